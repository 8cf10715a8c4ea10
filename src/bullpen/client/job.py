"""What the client hands back about jobs: a handle to wait on, a snapshot, a bulk item."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast

from redis.exceptions import RedisError

from bullpen.adapter import JobRecord
from bullpen.errors import JobFailedError, JobNotFoundError, JobTimeoutError

STATE_LOOKUP_S = 2.0
JobState = Literal["waiting", "active", "delayed", "prioritized", "completed", "failed", "paused",
                   "waiting-children", "unknown"]


def _when(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A snapshot of one job: its task, state, data, result or failure, attempts and times."""

    id: str
    task: str
    state: JobState
    data: Any
    result: Any
    failed_reason: str | None
    attempts_made: int
    attempts_allowed: int
    progress: Any
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    schedule: str | None
    queue: str | None = None

    @property
    def finished(self) -> bool:
        """True once the job is completed or failed (no retry left)."""
        return self.state in ("completed", "failed")

    @classmethod
    def of(cls, record: JobRecord, queue: str | None = None) -> JobInfo:
        return cls(
            id=record.id, task=record.name, state=cast(JobState, record.state or "unknown"),
            data=record.data, result=record.return_value, failed_reason=record.failed_reason,
            attempts_made=record.attempts_made, attempts_allowed=record.attempts_allowed,
            progress=record.progress,
            created_at=_when(record.timestamp_ms) or datetime.fromtimestamp(0, tz=UTC),
            started_at=_when(record.processed_on_ms), finished_at=_when(record.finished_on_ms),
            schedule=record.scheduler_id, queue=queue,
        )


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job for `enqueue_many`: the same arguments as `enqueue`."""

    task: str
    data: Any = None
    delay_ms: int = 0
    job_id: str | None = None
    attempts: int | None = None
    priority: int | None = None
    queue: str | None = None


class JobSource(Protocol):
    """What a handle needs from its client (kept abstract so the two modules do not cycle)."""

    async def get_job(self, job_id: str, *, queue: str | None = None) -> JobInfo | None: ...

    async def _outcome(self, job_id: str, timeout_s: float | None, queue: str | None = None
                       ) -> tuple[str, Any, str | None]:
        ...

    async def cancel(self, job_id: str, reason: str | None = None, *,
                     queue: str | None = None) -> bool: ...


class Job:
    """A job enqueued by (or looked up through) a `Client`: its `id`, its `queue` (None: the
    client's default queue), and ways to follow it.

    As safe to share as its client: any task on the client's event loop may wait on it.
    """

    __slots__ = ("_source", "id", "queue", "task")

    def __init__(self, source: JobSource, job_id: str, task: str | None = None,
                 queue: str | None = None) -> None:
        self._source = source
        self.id = job_id
        self.task = task
        self.queue = queue

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, task={self.task!r}, queue={self.queue!r})"

    async def wait(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - documented API
        """The task's return value once the job completes.

        Raises JobFailed (its message carries the failure reason) when the job fails for good,
        TimeoutError (a JobTimeoutError) when `timeout` seconds pass first, JobNotFoundError
        when no such job exists. Waiting does not cancel or change the job.
        """
        try:
            state, result, reason = await self._source._outcome(self.id, timeout, self.queue)
        except TimeoutError:
            raise JobTimeoutError(self.id, timeout or 0, await self._state_now()) from None
        if state == "failed":
            info = await self._source.get_job(self.id, queue=self.queue)
            raise JobFailedError(self.id, info.task if info else self.task, reason,
                                 info.attempts_made if info else None)
        return result

    async def _state_now(self) -> str | None:
        """The state for a timeout's message, if Redis tells it quickly."""
        try:
            return await asyncio.wait_for(self.status(), STATE_LOOKUP_S)
        except (TimeoutError, RedisError):
            return None

    async def status(self) -> JobState:
        """The job's state now; "unknown" if it does not exist (never added, or removed)."""
        info = await self._source.get_job(self.id, queue=self.queue)
        return info.state if info is not None else "unknown"

    async def cancel(self, reason: str | None = None) -> bool:
        """Cancel the job if it is running (see `Client.cancel`); False if it is not."""
        return await self._source.cancel(self.id, reason, queue=self.queue)

    async def info(self) -> JobInfo:
        """A snapshot of the job; JobNotFoundError if it does not exist."""
        info = await self._source.get_job(self.id, queue=self.queue)
        if info is None:
            raise JobNotFoundError(f"job {self.id!r} does not exist (never added, or removed "
                                   "by the keep_completed/keep_failed limits)")
        return info
