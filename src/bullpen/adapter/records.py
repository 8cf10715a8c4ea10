"""Jobs and schedulers as bullpen shows them: PEP 8 records over the port's objects."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

JOB_STATES = ("waiting", "active", "delayed", "prioritized", "completed", "failed", "paused")


@dataclass(slots=True)
class JobRecord:
    """A job as bullpen shows it: PEP 8 names over the port's job hash."""

    id: str
    name: str
    data: Any
    attempts_made: int
    attempts_allowed: int
    timestamp_ms: int
    processed_on_ms: int | None
    finished_on_ms: int | None
    delay_ms: int
    failed_reason: str | None
    stacktrace: list[str]
    return_value: Any
    progress: Any
    scheduler_id: str | None
    state: str | None = None
    processed_by: str | None = None
    # As stored in the job hash (BullMQ's short keys: `kl`, `de`, `tm` for telemetry, ...).
    raw_opts: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        if self.processed_on_ms and self.finished_on_ms:
            return self.finished_on_ms - self.processed_on_ms
        return None

    @property
    def display_name(self) -> str:
        """Scheduled jobs are logged by their schedule name, one-off jobs by id."""
        return self.scheduler_id or self.id


def record_of(job: Any, state: str | None = None) -> JobRecord:
    return JobRecord(
        id=str(job.id),
        name=job.name,
        data=job.data,
        attempts_made=int(job.attemptsMade),
        attempts_allowed=int(job.opts.get("attempts") or 1),
        timestamp_ms=int(job.timestamp),
        processed_on_ms=int(job.processedOn) or None,
        finished_on_ms=int(job.finishedOn) or None,
        delay_ms=int(job.delay or 0),
        failed_reason=job.failedReason,
        stacktrace=list(job.stacktrace or []),
        return_value=job.returnvalue,
        progress=job.progress,
        scheduler_id=job.repeatJobKey,
        state=state,
        raw_opts=dict(job.opts),
    )


UNDECODABLE_SHOWN_CHARS = 2000


def undecodable_record(job_id: str, raw: dict[str, Any], state: str | None,
                       error: Exception) -> JobRecord:
    """A job whose stored JSON cannot be decoded (nested too deeply, not JSON): its fields as
    stored, the undecodable ones as the start of their text."""
    reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)

    def text(name: str) -> str | None:
        value = raw.get(name)
        if value is None:
            return None
        return (f"(stored {name} cannot be decoded: {reason}; its first "
                f"{UNDECODABLE_SHOWN_CHARS} characters) {str(value)[:UNDECODABLE_SHOWN_CHARS]}")

    def number(*names: str) -> int:
        found = next((raw[name] for name in names if raw.get(name)), 0)
        return int(found) if str(found).isdigit() else 0

    return JobRecord(
        id=job_id, name=str(raw.get("name") or ""), data=text("data"),
        attempts_made=number("atm", "attemptsMade"), attempts_allowed=0,
        timestamp_ms=number("timestamp"), processed_on_ms=number("processedOn") or None,
        finished_on_ms=number("finishedOn") or None, delay_ms=number("delay"),
        failed_reason=raw.get("failedReason"), stacktrace=[], return_value=text("returnvalue"),
        progress=None, scheduler_id=raw.get("rjk"), state=state,
    )


@dataclass(slots=True)
class SchedulerRecord:
    """A job scheduler as registered in Redis."""

    id: str
    task_name: str
    pattern: str | None
    every_ms: int | None
    tz: str | None
    next_ms: int | None
    iteration_count: int
    data: Any = None
    raw_opts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_port(cls, raw: dict[str, Any]) -> SchedulerRecord:
        template = raw.get("template") or {}
        return cls(
            id=str(raw.get("key")),
            task_name=str(raw.get("name") or ""),
            pattern=raw.get("pattern"),
            every_ms=raw.get("every"),
            tz=raw.get("tz"),
            next_ms=int(raw["next"]) if raw.get("next") is not None else None,
            iteration_count=int(raw.get("iterationCount") or 0),
            data=template.get("data"),
            raw_opts=template.get("opts") or {},
        )


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """BullMQ's metrics for one outcome: a running count and per-minute counts, newest first
    (the first point is the last minute that ended with a job finished after it)."""

    count: int
    prev_ts_ms: int
    prev_count: int
    per_minute: list[int]
    points: int


def now_ms() -> int:
    return int(time.time() * 1000)
