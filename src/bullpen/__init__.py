"""bullpen: background jobs, cron schedules and export files for Python web apps, on BullMQ."""

__version__ = "0.1.0"

from bullpen.context import JobContext  # noqa: E402
from bullpen.errors import BullpenError, UnrecoverableJobError  # noqa: E402
from bullpen.schedule import ScheduledJob  # noqa: E402

__all__ = ["BullpenError", "JobContext", "ScheduledJob", "UnrecoverableJobError", "__version__"]
