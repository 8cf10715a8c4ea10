"""Taking jobs, as Node BullMQ's worker does: moveToActive while jobs come, BZPOPMIN on the
queue's marker once drained, no fetch while the rate limiter's window is full, and an
event-loop timer for the last moments before a delayed job is due."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from typing import Any, TypeVar

from bullpen.adapter.connections import BlockingWaiter, Health
from bullpen.adapter.plans import Plans
from bullpen.adapter.protocol import NextJob, QueueCommands, now_ms

T = TypeVar("T")

# How long before a delayed job is due the worker stops blocking in Redis and sleeps locally:
# Redis ends a blocked command only on its own timer tick (100 ms at the default hz 10).
LOCAL_TIMER_MS = 110
# BullMQ never blocks longer than this, so a lost wake-up costs at most this much.
MAX_BLOCK_S = 10.0
# Node's maximumRateLimitDelay: a rate-limited worker looks again at least this often.
MAX_LIMIT_WAIT_MS = 30_000


class Fetcher:
    """Hands out jobs one fetch at a time; slots wait their turn."""

    def __init__(self, commands: QueueCommands, waiter: BlockingWaiter, plans: Plans,
                 health: Health, worker_id: str, drain_delay_s: float) -> None:
        self._commands = commands
        self._waiter = waiter
        self._plans = plans
        self._health = health
        self._drain_delay_s = drain_delay_s
        self._tokens = (f"{worker_id}:{n}" for n in itertools.count())
        self._turn = asyncio.Lock()
        self._waiting: asyncio.Future[Any] | None = None
        self.closing = False
        self.drained = False
        self.block_until = 0  # epoch ms of the next delayed job, when known
        self.limit_until = 0  # epoch ms until which the rate limiter allows no fetch

    async def next_job(self) -> tuple[NextJob, str] | None:
        """The next job and its lock token, or None once closing."""
        async with self._turn:
            while not self.closing:
                token = next(self._tokens)
                try:
                    job = await self._fetch(token)
                except Exception as exc:
                    if self.closing:
                        return None
                    self._health.failed(exc)
                    await self._pause(self._health.retry_delay_s)
                    continue
                if job is not None:
                    return job, token
        return None

    def update(self, result: NextJob) -> NextJob | None:
        """Take in a fetch's outcome (Node's updateDelays); the job, if it brought one."""
        self.limit_until = now_ms() + result.limit_ms if result.limit_ms > 0 else 0
        self.block_until = max(result.delay_until_ms, 0)
        self.drained = result.fields is None
        return result if result.fields is not None else None

    def close(self) -> None:
        """Take no more jobs; a blocking wait or sleep in progress ends now."""
        self.closing = True
        if self._waiting is not None:
            self._waiting.cancel()

    async def _fetch(self, token: str) -> NextJob | None:
        limited_ms = self.limit_until - now_ms()
        if limited_ms > 0:
            await self._pause(min(limited_ms, MAX_LIMIT_WAIT_MS) / 1000)
            self.limit_until, self.drained = 0, False
        elif self.drained and not await self._wait_for_marker():
            return None
        if self.closing:
            return None
        result = await self._commands.move_to_active(self._plans.fetch_opts(token))
        self._health.succeeded()
        return self.update(result)

    async def _wait_for_marker(self) -> bool:
        """Block until a job may be fetchable; False when only the next due time changed."""
        block_until = self.block_until
        if block_until:
            remaining_ms = block_until - now_ms()
            if remaining_ms <= LOCAL_TIMER_MS:
                await self._pause(max(remaining_ms, 0) / 1000)
                self.block_until = 0
                return True
            timeout_s = max(min((remaining_ms - LOCAL_TIMER_MS) / 1000, MAX_BLOCK_S), 0.01)
        else:
            timeout_s = self._drain_delay_s
        score = await self._interruptible(self._waiter.pop_marker(timeout_s))
        if score is None:
            # Timed out: with a due time known, the local timer takes over; else poll.
            return not block_until or self.closing
        if block_until and score > block_until:
            score = block_until
        if score <= 0 or score - now_ms() < 1:
            self.block_until = 0
            return True
        self.block_until = int(score)
        return False

    async def _pause(self, delay_s: float) -> None:
        await self._interruptible(asyncio.sleep(delay_s))

    async def _interruptible(self, wait: Awaitable[T]) -> T | None:
        """Await `wait`; None if close() ended it."""
        if self.closing:
            if asyncio.iscoroutine(wait):
                wait.close()
            return None
        task = asyncio.ensure_future(wait)
        self._waiting = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.closing and task.cancelled() and not (current and current.cancelling()):
                return None
            raise
        finally:
            self._waiting = None
