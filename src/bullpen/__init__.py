"""bullpen: background jobs, cron schedules and export files for Python web apps, on BullMQ."""

import os as _os
import sys as _sys

# `python -m bullpen` (how `--processes N` and `--dev` start their children) puts the working
# directory first on sys.path while this package loads, so a stray `uvloop.py` or `redis.py`
# there would run in place of the installed module. It is dropped before anything else is
# imported; the loader appends the working directory again, last, for the app's package.
if _sys.argv[:1] == ["-m"] and _sys.path and _sys.path[0] in ("", _os.getcwd()):
    del _sys.path[0]

from bullpen.client import Client, Job, JobInfo, JobSpec, SyncClient, SyncJob, task
from bullpen.definitions.schedule import ScheduledJob
from bullpen.definitions.task import isolated
from bullpen.errors import (
    BullpenError,
    JobCancelledError,
    JobFailedError,
    UnrecoverableJobError,
)
from bullpen.exports.function_exporter import exporter
from bullpen.runtime.context import JobContext
from bullpen.version import __version__

JobFailed = JobFailedError  # the name Celery and arq users look for; same class

__all__ = ["BullpenError", "Client", "Job", "JobCancelledError", "JobContext", "JobFailed",
           "JobFailedError", "JobInfo", "JobSpec", "ScheduledJob", "SyncClient", "SyncJob",
           "UnrecoverableJobError", "__version__", "exporter", "isolated", "task"]
