"""bullpen: background jobs, cron schedules and export files for Python web apps, on BullMQ."""

from bullpen.client import Client, Job, JobInfo, JobSpec, SyncClient, SyncJob, task
from bullpen.definitions.schedule import ScheduledJob
from bullpen.definitions.task import isolated
from bullpen.errors import BullpenError, JobFailedError, UnrecoverableJobError
from bullpen.exports.function_exporter import exporter
from bullpen.runtime.context import JobContext
from bullpen.version import __version__

JobFailed = JobFailedError  # the name Celery and arq users look for; same class

__all__ = ["BullpenError", "Client", "Job", "JobContext", "JobFailed", "JobFailedError",
           "JobInfo", "JobSpec", "ScheduledJob", "SyncClient", "SyncJob",
           "UnrecoverableJobError", "__version__", "exporter", "isolated", "task"]
