"""The OpenTelemetry side (imported only when BULLPEN_OTEL is on): PRODUCER spans around
enqueues, the trace context stored in the job as Node's bullmq-otel stores it, and log ids.

As with bullmq-otel, bullpen calls the global OpenTelemetry API: the app (or
`opentelemetry-instrument`) sets the tracer and meter providers, exporters and propagator.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.trace import Link, SpanKind

from bullpen.telemetry import names
from bullpen.version import __version__


def metadata_of(ctx: context.Context | None = None) -> str | None:
    """The trace context as Node's bullmq-otel stores it in a job (`tm`): the JSON of the
    propagator's carrier, e.g. {"traceparent":"00-…-01"}; None when there is nothing to carry."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


def context_of(metadata: Any) -> context.Context | None:
    """The parent context a job carries in `tm`: a JSON string from bullpen or Node; missing,
    `false` (Node's addBulk with omitContext) or unreadable means none."""
    if not isinstance(metadata, str) or not metadata:
        return None
    try:
        carrier = json.loads(metadata)
    except ValueError:
        return None
    if not isinstance(carrier, dict):
        return None
    return propagate.extract({str(key): str(value) for key, value in carrier.items()},
                             context=context.Context())


@contextmanager
def attached(carrier: Mapping[str, str]) -> Iterator[None]:
    token = context.attach(propagate.extract(dict(carrier), context=context.Context()))
    try:
        yield
    finally:
        context.detach(token)


class Production:
    """An enqueue inside its PRODUCER span: the metadata to store in the job(s), and the ids."""

    __slots__ = ("metadata", "span")

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.metadata = metadata_of()

    def added(self, job_id: str) -> None:
        self.span.set_attribute(names.JOB_ID, job_id)


class Telemetry:
    """The tracer and meter bullpen records with; one per process."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer(names.SCOPE, __version__)
        self.meter = metrics.get_meter(names.SCOPE, __version__)

    @contextmanager
    def add(self, queue: str, job_name: str, scheduler_id: str | None = None
            ) -> Iterator[Production]:
        """`add <queue>.<job name>` (PRODUCER), as Node's Queue.add and upsertJobScheduler."""
        attributes: dict[str, Any] = {names.QUEUE_NAME: queue, names.QUEUE_OPERATION: "add",
                                      names.JOB_NAME: job_name}
        if scheduler_id is not None:
            attributes[names.JOB_SCHEDULER_ID] = scheduler_id
        with self.tracer.start_as_current_span(f"add {queue}.{job_name}", kind=SpanKind.PRODUCER,
                                               attributes=attributes) as span:
            yield Production(span)

    @contextmanager
    def add_bulk(self, queue: str, job_names: Sequence[str]) -> Iterator[Production]:
        """`addBulk <queue>` (PRODUCER): every job of the batch carries this span's context."""
        attributes: dict[str, Any] = {names.QUEUE_NAME: queue, names.QUEUE_OPERATION: "addBulk",
                      names.JOB_BULK_NAMES: list(job_names),
                      names.JOB_BULK_COUNT: len(job_names)}
        with self.tracer.start_as_current_span(f"addBulk {queue}", kind=SpanKind.PRODUCER,
                                               attributes=attributes) as span:
            yield Production(span)

    @contextmanager
    def next_tick(self, queue: str, job_name: str, scheduler_id: str,
                  scheduler_context: context.Context | None) -> Iterator[None]:
        """A tick's next iteration: `add <queue>.<job name>` in a trace of its own (as Node's
        worker makes it), linked to the span that registered the scheduler."""
        parent = trace.get_current_span(scheduler_context).get_span_context() \
            if scheduler_context is not None else None
        links = [Link(parent)] if parent is not None and parent.is_valid else []
        with self.tracer.start_as_current_span(
                f"add {queue}.{job_name}", context=context.Context(), kind=SpanKind.PRODUCER,
                links=links, attributes={names.QUEUE_NAME: queue, names.QUEUE_OPERATION: "add",
                                         names.JOB_SCHEDULER_ID: scheduler_id}):
            yield

    def carrier(self) -> dict[str, str]:
        """The current trace context, to hand to another process."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier

    def warn_if_unconfigured(self, log: logging.Logger) -> None:
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            log.warning("BULLPEN_OTEL is on but no OpenTelemetry tracer provider is set: spans "
                        "go nowhere. Configure the SDK in your app's package (BULLPEN_APP) or "
                        "run under opentelemetry-instrument (docs/observability.md)")


def log_ids() -> dict[str, str] | None:
    """The current span's trace and span ids as log fields, or None outside a span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return {"trace_id": format(span_context.trace_id, "032x"),
            "span_id": format(span_context.span_id, "016x")}


@functools.cache
def shared() -> Telemetry:
    return Telemetry()
