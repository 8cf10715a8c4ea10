"""The names Node BullMQ 6.7.0 gives its spans, attributes and metrics (enums/telemetry-attributes),
so bullpen's traces and metrics sit beside a Node app's in the same queries."""

from __future__ import annotations

from typing import Final

# The instrumentation scope: bullmq-otel's default tracer and meter name.
SCOPE: Final = "bullmq"

QUEUE_NAME: Final = "bullmq.queue.name"
QUEUE_OPERATION: Final = "bullmq.queue.operation"
JOB_NAME: Final = "bullmq.job.name"
JOB_ID: Final = "bullmq.job.id"
JOB_ATTEMPTS_MADE: Final = "bullmq.job.attempts.made"
JOB_BULK_NAMES: Final = "bullmq.job.bulk.names"
JOB_BULK_COUNT: Final = "bullmq.job.bulk.count"
JOB_SCHEDULER_ID: Final = "bullmq.job.scheduler.id"
JOB_FINISHED_TIMESTAMP: Final = "bullmq.job.attempt_finished_timestamp"
JOB_PROCESSED_TIMESTAMP: Final = "bullmq.job.processed.timestamp"
JOB_RESULT: Final = "bullmq.job.result"
JOB_FAILED_REASON: Final = "bullmq.job.failed.reason"
JOB_STATE: Final = "bullmq.job.state"
WORKER_ID: Final = "bullmq.worker.id"
WORKER_NAME: Final = "bullmq.worker.name"

# Span events on the CONSUMER span.
EVENT_COMPLETED: Final = "job completed"
EVENT_FAILED: Final = "job failed"

# Counters (unit "1") by how an attempt left the active state, and the duration histogram.
JOB_COUNTERS: Final = {
    "complete": ("bullmq.jobs.completed", "completed", "Number of jobs completed"),
    "fail": ("bullmq.jobs.failed", "failed", "Number of jobs failed"),
    "delay": ("bullmq.jobs.delayed", "delayed", "Number of jobs delayed"),
    "retry": ("bullmq.jobs.retried", "retried", "Number of jobs retried"),
    "wait": ("bullmq.jobs.waiting", "waiting", "Number of jobs waiting"),
}
JOB_DURATION: Final = "bullmq.job.duration"
