"""The stalled-job check: at start, then every stalled interval, timed to the fleet's check.

BullMQ lets one check per interval run across all workers (the `stalled-check` key). A worker
that only looked once per own interval could miss the key's expiry by almost a whole interval,
so after each attempt this one sleeps until the key expires, keeping the fleet's checks an
interval apart whatever the workers' start times. A job whose worker died is then re-queued
within lock duration + stalled interval (when the lock is not longer than the interval).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bullpen.adapter.connections import Health
from bullpen.adapter.protocol import QueueCommands


class StalledChecker:
    """Moves jobs whose lock expired back to waiting (or fails those stalled too often)."""

    def __init__(self, commands: QueueCommands, health: Health, interval_ms: int,
                 max_stalled_count: int, on_stalled: Callable[[str], None]) -> None:
        self._commands = commands
        self._health = health
        self._interval_ms = interval_ms
        self._max_stalled_count = max_stalled_count
        self._on_stalled = on_stalled

    async def run(self) -> None:
        while True:
            delay_ms = await self.check()
            await asyncio.sleep(delay_ms / 1000)

    async def check(self) -> float:
        """One attempt; milliseconds until the next."""
        try:
            moved, ttl_ms = await self._commands.move_stalled_to_wait(self._max_stalled_count,
                                                                      self._interval_ms)
        except Exception as exc:
            self._health.failed(exc)
            return self._health.retry_delay_s * 1000
        self._health.succeeded()
        for job_id in moved:
            self._on_stalled(job_id)
        # Just past the fleet-wide key's expiry (absent or unexpiring: a full interval).
        return ttl_ms + 1 if 0 < ttl_ms <= self._interval_ms else self._interval_ms
