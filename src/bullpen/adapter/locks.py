"""Keeps the locks of the jobs a worker runs, as Node's lock manager does, until each job is
finished or abandoned: a draining worker keeps renewing, so no peer takes its jobs."""

from __future__ import annotations

import asyncio

from bullpen.adapter.connections import Health
from bullpen.adapter.protocol import QueueCommands, now_ms
from bullpen.errors import LockLostError


class LockRenewer:
    """Renews every tracked job's lock each `lock_duration/4` in one extendLocks call."""

    def __init__(self, commands: QueueCommands, health: Health, lock_duration_ms: int) -> None:
        self._commands = commands
        self._health = health
        self._lock_duration_ms = lock_duration_ms
        # Node's lockRenewTime is half the lock; it ticks and renews every half of that.
        self._tick_ms = max(lock_duration_ms // 4, 1)
        self.tracked: dict[str, tuple[str, int]] = {}  # job id -> (token, last renewed, ms)

    def track(self, job_id: str, token: str, since_ms: int) -> None:
        self.tracked[job_id] = (token, since_ms)

    def untrack(self, job_id: str) -> None:
        self.tracked.pop(job_id, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._tick_ms / 1000)
            await self.renew_due()

    async def renew_due(self) -> None:
        now = now_ms()
        due = {job_id: token for job_id, (token, since) in self.tracked.items()
               if since + self._tick_ms < now}
        if not due:
            return
        try:
            failed = await self._commands.extend_locks(list(due), list(due.values()),
                                                       self._lock_duration_ms)
        except Exception as exc:
            self._health.failed(exc)
            return
        self._health.succeeded()
        for job_id, token in due.items():
            if self.tracked.get(job_id, (None,))[0] == token:
                self.tracked[job_id] = (token, now)
        for job_id in failed:
            if job_id in self.tracked:
                self._health.failed(LockLostError(
                    f"could not renew the lock of job {job_id}: it expired or another worker "
                    "holds it, so the job may run twice", -2))
