"""A test app for tracing and cancelling: with OBSERVED_SPANS set, every process that loads it
(worker, its isolated children, the CLI) configures the OpenTelemetry SDK and writes each
finished span as one JSON line to that file (metrics to OBSERVED_METRICS), as an app would
configure its exporters in its package. The tests put the repository on PYTHONPATH."""

from __future__ import annotations

import json
import os
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from tests.helpers.otel import as_record

_SPANS = os.environ.get("OBSERVED_SPANS")


def _span_line(span: Any) -> str:
    return json.dumps({**as_record(span), "pid": os.getpid()}) + "\n"


def _configure(spans_path: str) -> None:
    provider = TracerProvider()
    # Line-buffered appends: the worker, its isolated children and the CLI share the file.
    out = open(spans_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - for the process's life
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=out,
                                                                        formatter=_span_line)))
    trace.set_tracer_provider(provider)
    metrics_path = os.environ.get("OBSERVED_METRICS")
    if metrics_path:
        exporter = ConsoleMetricExporter(
            out=open(metrics_path, "a", buffering=1, encoding="utf-8"),  # noqa: SIM115
            formatter=lambda data: data.to_json(indent=None) + "\n")
        metrics.set_meter_provider(MeterProvider(metric_readers=[
            PeriodicExportingMetricReader(exporter, export_interval_millis=300)]))


if _SPANS:
    _configure(_SPANS)
