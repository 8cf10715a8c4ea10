"""QueueWorker: bullpen's own consume loop over BullMQ's Lua scripts, built in the running loop.

One task per concurrency slot takes a job from the fetcher and runs it and every job its
finish hands back; beside them a lock renewer and the stalled check. On close the worker takes
no new job, keeps renewing the locks of running ones until they finish or the timeout passes,
then leaves any still running to their expiring locks (Node's close, then close(force)).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bullpen.adapter.active import ActiveJob
from bullpen.adapter.connections import BlockingWaiter, Health, command_client
from bullpen.adapter.fetcher import Fetcher
from bullpen.adapter.locators import for_queue
from bullpen.adapter.locks import LockRenewer
from bullpen.adapter.options import WorkerOptions
from bullpen.adapter.pipelining import PipeliningRedis
from bullpen.adapter.plans import Plans
from bullpen.adapter.protocol import QueueCommands, now_ms
from bullpen.adapter.redis_options import connection_kwargs
from bullpen.adapter.runner import JobObserver, JobRunner, Processor
from bullpen.adapter.scripts import ScriptRegistry
from bullpen.adapter.stalled import StalledChecker
from bullpen.adapter.worker_names import default_worker_name, worker_client_name

__all__ = ["ActiveJob", "Processor", "QueueWorker"]

ErrorCallback = Callable[[BaseException], None]
# Called with the error when Redis stops answering, with None when it answers again.
ConnectionCallback = Callable[[BaseException | None], None]


@dataclass(slots=True)
class _Running:
    client: PipeliningRedis
    waiter: BlockingWaiter
    commands: QueueCommands
    fetcher: Fetcher
    renewer: LockRenewer
    runner: JobRunner
    checker_task: asyncio.Task[None]
    renewer_task: asyncio.Task[None]
    slots: list[asyncio.Task[None]]


class QueueWorker:
    """Consumes one queue with a processor, as a Node BullMQ worker would."""

    def __init__(self, url: str, queue_name: str, prefix: str, options: WorkerOptions,
                 processor: Processor, observer: JobObserver | None = None) -> None:
        self._connection = for_queue(connection_kwargs(url), prefix, queue_name)
        self._queue_name = queue_name
        self._prefix = prefix
        self._options = options
        self._processor = processor
        self.observer = observer  # set before start(); it needs worker_id and name
        self.worker_id = uuid.uuid4().hex
        self.name = options.name or default_worker_name()
        self._running: _Running | None = None
        self._background: set[asyncio.Task[None]] = set()

    def start(self, on_error: ErrorCallback,
              on_connection: ConnectionCallback | None = None,
              on_stalled: Callable[[str], None] | None = None) -> None:
        """Begin consuming; `on_stalled(job_id)` hears of each job this worker's stalled check
        moved back to waiting (its worker died or stopped renewing the lock)."""
        asyncio.get_running_loop()  # refuses, loudly, to be built outside a running loop
        options = self._options
        registry = ScriptRegistry()
        client = command_client(self._connection, registry)
        commands = QueueCommands(client, registry, self._prefix, self._queue_name)
        waiter = BlockingWaiter(self._connection, worker_client_name(
            self._prefix, self._queue_name, self.name), commands.keys["marker"])
        health = Health(on_error, on_connection or (lambda _error: None),
                        lambda: self._spawn(waiter.connect()))
        plans = Plans(self.name, options.limiter, options.lock_duration_ms,
                      options.metrics_max_data_points, options.keep_completed,
                      options.keep_failed)
        fetcher = Fetcher(commands, waiter, plans, health, self.worker_id, options.drain_delay_s)
        renewer = LockRenewer(commands, health, options.lock_duration_ms)
        checker = StalledChecker(commands, health, options.stalled_interval_ms,
                                 options.max_stalled_count,
                                 on_stalled=on_stalled or (lambda _job_id: None))
        runner = JobRunner(commands, plans, fetcher, renewer, health, self._processor,
                           options.lock_duration_ms, self.observer)
        # Created in this order, so the first stalled check goes out before the first fetch.
        checker_task = asyncio.create_task(checker.run(), name="bullpen-stalled-check")
        self._spawn(waiter.connect())
        renewer_task = asyncio.create_task(renewer.run(), name="bullpen-lock-renewer")
        slots = [asyncio.create_task(self._slot(fetcher, runner, on_error),
                                     name=f"bullpen-slot-{index}")
                 for index in range(options.concurrency)]
        self._running = _Running(client, waiter, commands, fetcher, renewer, runner,
                                 checker_task, renewer_task, slots)

    @property
    def active_job_ids(self) -> list[str]:
        return list(self._running.renewer.tracked) if self._running else []

    @property
    def block_until_ms(self) -> int:
        """When the next delayed job is due, if this worker took the marker that says so."""
        return self._running.fetcher.block_until if self._running else 0

    def stop_taking(self) -> None:
        """Take no new job from now on (close() does too); jobs already running carry on, and
        one whose fetch is under way goes back to waiting unstarted."""
        if self._running is not None:
            self._running.fetcher.close()

    async def close(self, timeout_s: float) -> bool:
        """Take no new job; let running ones finish (locks renewed) for up to `timeout_s`.

        False if jobs were still running then: they are abandoned, not finished, and another
        worker runs them again once their locks expire.
        """
        running = self._running
        if running is None:
            return True
        self.stop_taking()
        running.checker_task.cancel()
        _done, pending = await asyncio.wait(running.slots, timeout=timeout_s)
        abandoned = bool(running.renewer.tracked)
        if pending:
            running.runner.abandon()
            for slot in pending:
                slot.cancel()
            await asyncio.wait(pending, timeout=2)
        running.renewer_task.cancel()
        await self._hand_over_marker(running)
        for task in (running.checker_task, running.renewer_task, *self._background):
            task.cancel()
        await asyncio.wait({running.checker_task, running.renewer_task, *self._background},
                           timeout=1)
        for closing in (running.client.aclose(), running.waiter.close()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closing, 2)
        return not abandoned

    async def _slot(self, fetcher: Fetcher, runner: JobRunner, on_error: ErrorCallback) -> None:
        while True:
            taken = await fetcher.next_job()
            if taken is None:
                return
            try:
                await runner.run(*taken)
            except Exception as exc:  # a defect in the loop itself: report it, keep the slot
                on_error(exc)

    async def _hand_over_marker(self, running: _Running) -> None:
        """Put back the delayed-job marker this worker took, so an idle peer wakes on time.

        A worker that popped BullMQ's marker is the only one that knows when the next delayed
        job is due; without this, peers find out only at their next poll, up to seconds late.
        """
        block_until = running.fetcher.block_until
        if block_until <= now_ms():
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running.client.execute_command(
                "ZADD", running.commands.keys["marker"], block_until, "1"), 2)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        async def quietly() -> None:
            with contextlib.suppress(Exception):
                await coro

        task = asyncio.create_task(quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
