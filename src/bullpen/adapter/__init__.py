"""The one package that speaks BullMQ: bullpen's own worker over BullMQ's Lua scripts (as the
port ships them), the port's Queue and JobScheduler for producing, PEP 8 records and options.
"""

from bullpen.adapter.active import ActiveJob
from bullpen.adapter.consumer import QueueWorker
from bullpen.adapter.hooks import AttemptObserver, Operation
from bullpen.adapter.locators import for_key, redis_client, redis_pool
from bullpen.adapter.options import JobOptions, WorkerOptions
from bullpen.adapter.queue import QueueClient
from bullpen.adapter.records import JOB_STATES, JobRecord, SchedulerRecord, now_ms
from bullpen.adapter.redis_options import connection_kwargs, probe, quick_client
from bullpen.adapter.runner import JobObserver, Processor
from bullpen.adapter.worker_names import BullmqWorker

__all__ = [
    "JOB_STATES", "ActiveJob", "AttemptObserver", "BullmqWorker", "JobObserver", "JobOptions",
    "JobRecord", "Operation", "Processor", "QueueClient", "QueueWorker", "SchedulerRecord",
    "WorkerOptions", "connection_kwargs", "for_key", "now_ms", "probe", "quick_client",
    "redis_client", "redis_pool",
]
