"""bullpen: background jobs, cron schedules and export files for Python web apps, on BullMQ."""

from bullpen.definitions.schedule import ScheduledJob
from bullpen.definitions.task import isolated
from bullpen.errors import BullpenError, UnrecoverableJobError
from bullpen.runtime.context import JobContext
from bullpen.version import __version__

__all__ = ["BullpenError", "JobContext", "ScheduledJob", "UnrecoverableJobError", "__version__",
           "isolated"]
