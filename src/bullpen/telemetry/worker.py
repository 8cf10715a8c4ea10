"""The worker's side: a CONSUMER span per attempt, child of the producer's context stored in the
job (bullpen's or Node's), its finishing step as an INTERNAL child, and BullMQ's job metrics."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from bullpen.adapter import ActiveJob, Operation
from bullpen.telemetry import names
from bullpen.telemetry.tracing import Telemetry, context_of, metadata_of

_STORES_CONTEXT = frozenset({"retry", "delay", "fail"})  # Node's moveToFailed writes `tm`


class JobMetrics:
    """bullmq.jobs.* counters and the bullmq.job.duration histogram, as Node records them."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter
        self._counters = {operation: (meter.create_counter(name, unit="1", description=text),
                                      state)
                          for operation, (name, state, text) in names.JOB_COUNTERS.items()}
        self._duration = meter.create_histogram(names.JOB_DURATION, unit="ms",
                                                description="Job processing duration")

    def record(self, operation: Operation, queue: str, job_name: str,
               processed_on_ms: int) -> None:
        counter, state = self._counters[operation]
        attributes = {names.QUEUE_NAME: queue, names.JOB_NAME: job_name, names.JOB_STATE: state}
        counter.add(1, attributes)
        if processed_on_ms:
            self._duration.record(time.time() * 1000 - processed_on_ms, attributes)


class WorkerObserver:
    """Observes every attempt one worker runs (the runner's JobObserver)."""

    def __init__(self, telemetry: Telemetry, queue: str, worker_id: str,
                 worker_name: str) -> None:
        self.telemetry = telemetry
        self.tracer = telemetry.tracer
        self.metrics = JobMetrics(telemetry)
        self.queue = queue
        self.span_name = f"process {queue}"
        self.finish_names = {operation: f"{operation} {queue}" for operation in
                             ("complete", "retry", "delay", "fail")}
        self.worker_attributes = {names.QUEUE_NAME: queue, names.QUEUE_OPERATION: "process",
                                  names.WORKER_ID: worker_id, names.WORKER_NAME: worker_name}

    def attempt(self, active: ActiveJob) -> AttemptSpans:
        return AttemptSpans(self, active)


class AttemptSpans:
    """One attempt: its `process <queue>` span is current while the handler runs."""

    __slots__ = ("_active", "_finish_span", "_job_name", "_operation", "_owner", "_parent",
                 "_span", "_token")

    def __init__(self, owner: WorkerObserver, active: ActiveJob) -> None:
        self._owner = owner
        self._active = active
        self._job_name = (active.fields.get(b"name") or b"").decode("utf-8", "replace")
        # No stored context: a trace of its own, never the previous job's on this slot.
        self._parent = context_of(active.opts.get("tm")) or context.Context()
        self._span = owner.tracer.start_span(
            owner.span_name, context=self._parent, kind=SpanKind.CONSUMER,
            attributes={**owner.worker_attributes, names.JOB_ID: active.id,
                        names.JOB_NAME: self._job_name})
        self._token = context.attach(trace.set_span_in_context(self._span, self._parent))
        self._operation: Operation | None = None
        self._finish_span: trace.Span | None = None

    def next_tick(self, scheduler_id: str) -> AbstractContextManager[None]:
        return self._owner.telemetry.next_tick(self._owner.queue, self._job_name, scheduler_id,
                                               self._parent)

    def handled(self, result_json: str | None, error: BaseException | None) -> None:
        if error is None:
            self._span.add_event(names.EVENT_COMPLETED, {names.JOB_RESULT: result_json or ""})
            return
        self._span.add_event(names.EVENT_FAILED, {names.JOB_FAILED_REASON: str(error)})
        self._span.record_exception(error)
        self._span.set_status(Status(StatusCode.ERROR, str(error)))

    def finishing(self, operation: Operation) -> str | None:
        self._operation = operation
        name = self._owner.finish_names.get(operation)
        if name is None:  # handed back: Node's moveToWait has a metric, no span
            return None
        span = self._finish_span = self._owner.tracer.start_span(
            name, kind=SpanKind.INTERNAL, attributes={
                names.QUEUE_NAME: self._owner.queue, names.QUEUE_OPERATION: operation,
                names.JOB_NAME: self._job_name, names.JOB_ID: self._active.id})
        if operation not in _STORES_CONTEXT or self._active.opts.get("omc"):
            return None
        return metadata_of(trace.set_span_in_context(span))

    def finished(self, ok: bool) -> None:
        if self._finish_span is not None:
            self._finish_span.end()
            self._finish_span = None
        if ok and self._operation is not None:
            self._owner.metrics.record(self._operation, self._owner.queue, self._job_name,
                                       self._active.processed_on_ms)
        elif not ok:
            self._operation = None

    def close(self) -> None:
        counted = self._operation not in (None, "wait")
        attributes: dict[str, Any] = {
            names.JOB_ATTEMPTS_MADE: self._active.attempts_made + (1 if counted else 0),
            names.JOB_FINISHED_TIMESTAMP: int(time.time() * 1000),
            names.JOB_PROCESSED_TIMESTAMP: self._active.processed_on_ms,
        }
        self._span.set_attributes(attributes)
        self._span.end()
        context.detach(self._token)
