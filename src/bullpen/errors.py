"""Every error bullpen raises on purpose, under one base class."""

from __future__ import annotations

import difflib
from datetime import datetime


class BullpenError(Exception):
    """Base class: a message meant for the person running bullpen."""


class SettingsError(BullpenError):
    """One or more configuration values are invalid."""


class ReplicationError(BullpenError):
    """A durable enqueue (JOB_ENQUEUE_WAIT_REPLICAS) that fewer replicas acknowledged in time."""


class ClusterKeyError(SettingsError):
    """Under Redis Cluster, a queue whose keys would not share one hash slot."""


class SecretError(SettingsError):
    """A secret is missing, a placeholder, or too weak."""


class ScheduleError(BullpenError):
    """A declared schedule is invalid (pattern, zone, task, duplicate name)."""


class QueueNameError(BullpenError):
    """A queue name (declared, configured or given on the command line) cannot be used."""


class TaskError(BullpenError):
    """A task name is unknown or a task module cannot be loaded."""


class UnknownTaskError(TaskError):
    """No handler is registered under the requested task name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) or "none"
        close = difflib.get_close_matches(name, self.known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "check the spelling."
        super().__init__(f"no handler registered for task {name!r} (known: {listed}); {hint} "
                         "New tasks go in your app's tasks.task_handlers (BULLPEN_APP).")


class JobDataError(BullpenError):
    """Job data is not JSON, not serialisable, or too large."""


class JobIdError(BullpenError):
    """A custom job id that BullMQ refuses or that would collide with the queue's own keys."""


class JobNotFoundError(BullpenError):
    """No job with the given id exists in the queue."""


class RedisUnavailableError(BullpenError):
    """Redis does not answer at the configured address."""


class RedisFullError(BullpenError):
    """Redis refused a write because it reached its memory limit."""


class ExportError(BullpenError):
    """Base for export-file problems."""


class CleanupLockedError(ExportError):
    """Another cleanup holds the cluster-wide cleanup lock."""


class ExportDirectoryError(ExportError):
    """The export directory is missing, a symlink, or not a directory."""


class ExportNotFoundError(ExportError):
    """No export with this id exists (never created, expired and deleted, or removed)."""

    def __init__(self, export_id: str, detail: str = "") -> None:
        self.export_id = export_id
        super().__init__(f"export {export_id!r} does not exist{detail}; exports are deleted "
                         "once expired, so create it again")


class ExporterError(ExportError):
    """An exporter name is unknown or its params are invalid."""


class TokenError(ExportError):
    """A download token cannot be accepted."""


class TokenExpiredError(TokenError):
    """The token was genuine but its expiry has passed; `expired_at` says when (UTC)."""

    def __init__(self, expired_at: datetime) -> None:
        self.expired_at = expired_at
        super().__init__(f"download token expired at {expired_at.isoformat()}; "
                         "ask for a fresh download link")


class TokenInvalidError(TokenError):
    """The token is forged, damaged, or meant for something else; `reason` says which."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"download token rejected: {reason}; ask for a new download link")


class UnrecoverableJobError(BullpenError):
    """Raised by a handler to fail its job at once, without further retries."""


class JobCancelledError(UnrecoverableJobError):
    """The job was cancelled while it ran (dashboard, API, client): it fails, never retried.

    `shutdown` True: the worker is stopping instead; a handler that stops with this error
    hands its job back to the queue (waiting) for another worker.
    """

    def __init__(self, reason: str | None = None, *, shutdown: bool = False) -> None:
        self.reason = reason
        self.shutdown = shutdown
        if shutdown:
            super().__init__("the worker is shutting down: the job goes back to waiting")
        else:
            super().__init__(f"cancelled: {reason}" if reason else "cancelled")


class IsolatedTaskError(BullpenError):
    """An isolated task's handler raised in its child process (the message is the handler's)."""


class IsolatedTaskCrashError(IsolatedTaskError):
    """An isolated task's child process died while running a job."""


class JobDecodeError(UnrecoverableJobError):
    """A job's stored data or options cannot be decoded; retrying would not help."""


class JobStateError(BullpenError):
    """A BullMQ script refused to move a job (`code` is its negative reply)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class LockLostError(JobStateError):
    """The worker no longer holds the job's lock: another worker may be running it."""


class ScheduleIterationError(BullpenError):
    """A schedule's next tick could not be created from the tick a worker took."""


class EmbeddedError(BullpenError):
    """The embedded server cannot be found, started or stopped."""


class ActionError(BullpenError):
    """A dashboard or API action was refused; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ClientError(BullpenError):
    """The app-facing client was used wrongly: closed, not open, or on the wrong event loop."""


class JobFailedError(BullpenError):
    """A job waited on ended in `failed`; `reason` is BullMQ's failedReason for its last attempt."""

    def __init__(self, job_id: str, task: str | None, reason: str | None,
                 attempts_made: int | None = None) -> None:
        self.job_id = job_id
        self.task = task
        self.reason = reason or "(no reason recorded)"
        self.attempts_made = attempts_made
        tries = f" after {attempts_made} attempt(s)" if attempts_made else ""
        named = f" ({task})" if task else ""
        super().__init__(f"job {job_id!r}{named} failed{tries}: {self.reason}")


class JobTimeoutError(BullpenError, TimeoutError):
    """A wait for a job's result ran out of time; the job itself goes on."""

    def __init__(self, job_id: str, timeout_s: float, state: str | None = None) -> None:
        self.job_id = job_id
        self.timeout_s = timeout_s
        self.state = state
        still = f" (still {state})" if state else ""
        super().__init__(f"job {job_id!r} did not finish within {timeout_s:g} s{still}; it keeps "
                         "running: wait again, or check its status")
