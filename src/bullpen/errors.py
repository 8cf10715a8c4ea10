"""Every error bullpen raises on purpose, under one base class."""

from __future__ import annotations


class BullpenError(Exception):
    """Base class: a message meant for the person running bullpen."""


class SettingsError(BullpenError):
    """One or more configuration values are invalid."""


class SecretError(SettingsError):
    """A secret is missing, a placeholder, or too weak."""


class ScheduleError(BullpenError):
    """A declared schedule is invalid (pattern, zone, task, duplicate name)."""


class TaskError(BullpenError):
    """A task name is unknown or a task module cannot be loaded."""


class UnknownTaskError(TaskError):
    """No handler is registered under the requested task name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) or "none"
        super().__init__(f"no handler registered for task {name!r} (known: {listed})")


class JobDataError(BullpenError):
    """Job data is not JSON, not serialisable, or too large."""


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


class UnrecoverableJobError(BullpenError):
    """Raised by a handler to fail its job at once, without further retries."""
