"""Typed worker and job options; `JobOptions.to_port` maps job options to BullMQ's names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bullpen.errors import SettingsError


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Typed worker options, with Node BullMQ's meaning (its defaults where bullpen has none)."""

    concurrency: int = 5
    limiter_max: int = 0
    limiter_duration_ms: int = 1000
    lock_duration_ms: int = 30_000
    stalled_interval_ms: int = 30_000
    max_stalled_count: int = 1
    drain_delay_s: float = 5.0
    # Shown by BullMQ tools and stored on each job as `processedBy`; None: `<host>:<pid>`.
    name: str | None = None
    # Per-minute completed/failed counts kept for Queue.getMetrics(); 0 keeps none.
    metrics_max_data_points: int = 0
    # Finished jobs kept when a job carries no removeOnComplete/removeOnFail; None: all.
    keep_completed: int | None = None
    keep_failed: int | None = None

    def __post_init__(self) -> None:
        for name in ("concurrency", "limiter_duration_ms", "lock_duration_ms",
                     "stalled_interval_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SettingsError(f"worker option {name}={value!r}: expected an integer >= 1")
        if self.limiter_max < 0 or self.max_stalled_count < 0:
            raise SettingsError("worker options limiter_max and max_stalled_count must be >= 0")
        if self.metrics_max_data_points < 0:
            raise SettingsError(f"worker option metrics_max_data_points="
                                f"{self.metrics_max_data_points!r}: expected an integer >= 0")
        if self.name is not None and (not self.name or any(c.isspace() for c in self.name)):
            raise SettingsError(f"worker option name={self.name!r}: expected a non-empty name "
                                "without spaces (it becomes part of a Redis client name)")

    @property
    def limiter(self) -> dict[str, int] | None:
        """BullMQ's `limiter` option, or None when off."""
        if self.limiter_max <= 0:
            return None
        return {"max": self.limiter_max, "duration": self.limiter_duration_ms}


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
    # Trace context for the worker's span (W3C carrier as JSON), stored where Node stores it.
    telemetry_metadata: str | None = None

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
        if self.telemetry_metadata:
            opts["tm"] = self.telemetry_metadata  # Node's optsAsJSON name for telemetry.metadata
        return opts
