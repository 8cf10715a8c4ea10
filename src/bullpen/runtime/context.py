"""What a handler may take as its second argument: the job, its logs, the worker's services,
and the signal that the job was cancelled (or that the worker is about to abandon it)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bullpen.adapter import ActiveJob, JobRecord, QueueClient
from bullpen.errors import JobCancelledError
from bullpen.settings import Settings


@dataclass(slots=True)
class JobContext:
    """Passed to `f(data, ctx)` handlers; `log` works from async code and from threads alike."""

    job: JobRecord
    worker_id: str
    settings: Settings
    queue: QueueClient
    _active: ActiveJob
    _loop: asyncio.AbstractEventLoop
    _pending: list[asyncio.Future[Any]] = field(default_factory=list)
    _from_threads: list[concurrent.futures.Future[Any]] = field(default_factory=list)
    _cancel: JobCancelledError | None = None
    # While an `async def` handler runs: its task, cancelled by a request.
    _task: asyncio.Task[Any] | None = None
    _interrupted: bool = False
    # An isolated task's child is told through this (with whether to interrupt it).
    _on_cancel: Callable[[bool], None] | None = None
    _event: asyncio.Event | None = None

    @property
    def redis(self) -> aioredis.Redis:
        """The worker's async redis-py client (decoded strings), for the app's own keys."""
        return self.queue.redis

    @property
    def token(self) -> str:
        """The lock token of this run of the job."""
        return self._active.token

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (dashboard, API, client), or once the worker is about
        to abandon it at shutdown: stop soon, and raise (`raise_if_cancelled()`)."""
        return self._cancel is not None

    @property
    def cancel_reason(self) -> str | None:
        """Why: "cancelled", "cancelled: <reason>", or the shutdown's message; None if not."""
        return str(self._cancel) if self._cancel is not None else None

    @property
    def cancellation(self) -> JobCancelledError | None:
        """The error a cancelled job ends with (its `shutdown` tells the two signals apart)."""
        return self._cancel

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelledError once cancelled: the job then fails as "cancelled" (never
        retried), or, at shutdown, goes back to waiting for another worker."""
        if self._cancel is not None:
            raise self._cancel

    async def wait_cancelled(self) -> str:
        """For `async def` handlers: wait until the job is cancelled or the worker is about to
        abandon it (at shutdown, when no task cancellation comes); returns the reason."""
        if self._event is None:
            self._event = asyncio.Event()
            if self._cancel is not None:
                self._event.set()
        await self._event.wait()
        return str(self._cancel)

    def log(self, line: str) -> None:
        """Append a line to the job's BullMQ log (shown by dashboards and `bullpen job ID`)."""
        self._submit(self._active.log(line))

    def progress(self, value: Any) -> None:
        """Record progress (a number or a JSON object) on the job."""
        self._submit(self._active.update_progress(value))

    def request_cancel(self, error: JobCancelledError) -> None:
        """The worker's side of a cancel request (on its event loop): raise the signal once.
        A cancel (not a shutdown notice) also cancels an `async def` handler's task where it
        awaits: a job that can still finish before the shutdown timeout is not cut short."""
        if self._cancel is not None:
            return
        self._cancel = error
        interrupt = not error.shutdown
        if self._event is not None:
            self._event.set()
        if self._task is not None and interrupt:
            self._interrupted = True
            self._task.cancel(f"bullpen: {error}")
        if self._on_cancel is not None:
            self._on_cancel(interrupt)

    def _submit(self, coro: Any) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._pending.append(asyncio.ensure_future(coro))
        else:
            # From a `def` handler's thread: run on the worker's loop, collect at flush().
            self._from_threads.append(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def flush(self) -> None:
        """Wait for log and progress writes made by the handler."""
        pending = self._pending + [
            asyncio.wrap_future(future, loop=self._loop) for future in self._from_threads
        ]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            self._pending.clear()
            self._from_threads.clear()
