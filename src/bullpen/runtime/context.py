"""What a handler may take as its second argument: the job, its logs, and the worker's services."""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bullpen.adapter import ActiveJob, JobRecord, QueueClient
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

    @property
    def redis(self) -> aioredis.Redis:
        """The worker's async redis-py client (decoded strings), for the app's own keys."""
        return self.queue.redis

    def log(self, line: str) -> None:
        """Append a line to the job's BullMQ log (shown by dashboards and `bullpen job ID`)."""
        self._submit(self._active.log(line))

    def progress(self, value: Any) -> None:
        """Record progress (a number or a JSON object) on the job."""
        self._submit(self._active.update_progress(value))

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
