"""bullpen: background jobs, cron schedules and export files for Python web apps, on BullMQ.

The public names below are imported on first use, so a command or worker that needs none of
them (`bullpen enqueue`, a worker process) starts without loading the client and its imports.
"""

from __future__ import annotations

import importlib
import os as _os
import sys as _sys
from typing import TYPE_CHECKING, Any

# `python -m bullpen` (how `--processes N` and `--dev` start their children) puts the working
# directory first on sys.path while this package loads, so a stray `uvloop.py` or `redis.py`
# there would run in place of the installed module. It is dropped before anything else is
# imported; the loader appends the working directory again, last, for the app's package.
if _sys.argv[:1] == ["-m"] and _sys.path and _sys.path[0] in ("", _os.getcwd()):
    del _sys.path[0]

from bullpen.errors import (
    BullpenError,
    JobCancelledError,
    JobFailedError,
    UnrecoverableJobError,
)
from bullpen.version import __version__

if TYPE_CHECKING:
    from bullpen.client import Client, Job, JobInfo, JobSpec, SyncClient, SyncJob, task
    from bullpen.definitions.schedule import ScheduledJob
    from bullpen.definitions.task import isolated
    from bullpen.exports.function_exporter import exporter
    from bullpen.runtime.context import JobContext

JobFailed = JobFailedError  # the name Celery and arq users look for; same class

# Public name → the module that defines it.
_LAZY = {
    "Client": "bullpen.client", "Job": "bullpen.client", "JobInfo": "bullpen.client",
    "JobSpec": "bullpen.client", "SyncClient": "bullpen.client", "SyncJob": "bullpen.client",
    "task": "bullpen.client", "ScheduledJob": "bullpen.definitions.schedule",
    "isolated": "bullpen.definitions.task", "exporter": "bullpen.exports.function_exporter",
    "JobContext": "bullpen.runtime.context",
}

__all__ = ["BullpenError", "Client", "Job", "JobCancelledError", "JobContext", "JobFailed",
           "JobFailedError", "JobInfo", "JobSpec", "ScheduledJob", "SyncClient", "SyncJob",
           "UnrecoverableJobError", "__version__", "exporter", "isolated", "task"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bullpen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it directly
    return value
