"""bullpen: background jobs, cron schedules and export files for Python web apps, on BullMQ."""

__version__ = "0.1.0"

from bullpen.context import JobContext
from bullpen.errors import BullpenError, UnrecoverableJobError
from bullpen.schedule import ScheduledJob

__all__ = ["BullpenError", "JobContext", "ScheduledJob", "UnrecoverableJobError", "__version__"]
