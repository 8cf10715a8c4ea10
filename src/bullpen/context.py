"""What a handler may take as its second argument: the job, its logs, and the worker's services."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bullpen.adapter import ActiveJob, JobRecord
from bullpen.settings import Settings


@dataclass(slots=True)
class JobContext:
    """Passed to `f(data, ctx)` handlers; `log` works from async code and from threads alike."""

    job: JobRecord
    worker_id: str
    settings: Settings
    redis: Any
    _active: ActiveJob
    _loop: asyncio.AbstractEventLoop
    _pending: list[asyncio.Future[Any]] = field(default_factory=list)

    def log(self, line: str) -> None:
        """Append a line to the job's BullMQ log (shown by dashboards and `bullpen job ID`)."""
        self._submit(self._active.log(line))

    def progress(self, value: Any) -> None:
        """Record progress (a number or a JSON object) on the job."""
        self._submit(self._active.update_progress(value))

    def _submit(self, coro: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._pending.append(asyncio.ensure_future(coro))
        else:
            self._pending.append(
                asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))
            )

    async def flush(self) -> None:
        """Wait for log and progress writes made by the handler."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
            self._pending.clear()
