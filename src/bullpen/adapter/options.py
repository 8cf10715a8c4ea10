"""Typed worker and job options; `to_port` is the only place their camelCase names appear."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bullpen.errors import SettingsError


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Typed worker options; `to_port` is the only place their camelCase names appear."""

    concurrency: int = 5
    limiter_max: int = 0
    limiter_duration_ms: int = 1000
    lock_duration_ms: int = 30_000
    stalled_interval_ms: int = 30_000
    max_stalled_count: int = 1
    drain_delay_s: float = 5.0
    run_retry_delay_ms: int = 1000

    def __post_init__(self) -> None:
        for name in ("concurrency", "limiter_duration_ms", "lock_duration_ms",
                     "stalled_interval_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SettingsError(f"worker option {name}={value!r}: expected an integer >= 1")
        if self.limiter_max < 0 or self.max_stalled_count < 0:
            raise SettingsError("worker options limiter_max and max_stalled_count must be >= 0")

    def to_port(self, connection: dict[str, Any], prefix: str) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "connection": connection,
            "prefix": prefix,
            "autorun": False,
            "concurrency": self.concurrency,
            "lockDuration": self.lock_duration_ms,
            "stalledInterval": self.stalled_interval_ms,
            "maxStalledCount": self.max_stalled_count,
            "drainDelay": self.drain_delay_s,
            "runRetryDelay": self.run_retry_delay_ms,
        }
        if self.limiter_max > 0:
            opts["limiter"] = {"max": self.limiter_max, "duration": self.limiter_duration_ms}
        return opts


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options for enqueueing; mapped to BullMQ's names in `to_port`."""

    attempts: int = 1
    backoff_type: str = "exponential"
    backoff_delay_ms: int = 1000
    delay_ms: int = 0
    job_id: str | None = None
    priority: int = 0
    keep_completed: int = 1000
    keep_failed: int = 5000

    def to_port(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "attempts": self.attempts,
            "backoff": {"type": self.backoff_type, "delay": self.backoff_delay_ms},
            "removeOnComplete": {"count": self.keep_completed},
            "removeOnFail": {"count": self.keep_failed},
        }
        if self.delay_ms:
            opts["delay"] = self.delay_ms
        if self.job_id:
            opts["jobId"] = self.job_id
        if self.priority:
            opts["priority"] = self.priority
        return opts
