"""The one place that speaks to the BullMQ Python port: PEP 8 wrappers and its measured fixes.

Fixes applied here (each has a regression test in tests/test_adapter.py):
- blocking waits never time out client-side (redis-py >= 8 defaults socket_timeout to 5 s);
- a rate-limited worker sleeps the rest of the limiter window, not the 5 s drain delay;
- block timeouts keep their milliseconds (the port rounds them up to whole seconds until it
  has asked the server's version on the blocking connection);
- workers are built inside a running event loop, from validated options;
- cron patterns are computed by bullpen's own cron module (Node's dialect).
"""

from bullpen.adapter.consumer import QueueWorker
from bullpen.adapter.options import JobOptions, WorkerOptions
from bullpen.adapter.queue import QueueClient
from bullpen.adapter.records import (
    JOB_STATES,
    ActiveJob,
    JobRecord,
    Processor,
    SchedulerRecord,
    now_ms,
)
from bullpen.adapter.redis_options import connection_kwargs, probe, quick_client

__all__ = [
    "JOB_STATES", "ActiveJob", "JobOptions", "JobRecord", "Processor", "QueueClient",
    "QueueWorker", "SchedulerRecord", "WorkerOptions", "connection_kwargs", "now_ms", "probe",
    "quick_client",
]
