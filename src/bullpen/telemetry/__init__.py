"""OpenTelemetry for bullpen (the `otel` extra, switched on by BULLPEN_OTEL): spans, metrics and
log ids in Node BullMQ's names. Nothing imports OpenTelemetry until it is switched on, so with
it off the worker runs exactly as without it."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from bullpen.logs import TraceIds
from bullpen.settings import Settings

if TYPE_CHECKING:
    from bullpen.adapter import JobObserver
    from bullpen.telemetry.tracing import Telemetry


def telemetry_for(settings: Settings) -> Telemetry | None:
    """The process's Telemetry when BULLPEN_OTEL is on, else None."""
    if not settings.bullpen_otel:
        return None
    from bullpen.telemetry.tracing import shared  # noqa: PLC0415 - the optional extra, only when on

    return shared()


def observer_for(telemetry: Telemetry, queue: str, worker_id: str,
                 worker_name: str) -> JobObserver:
    """The worker's spans and metrics for every attempt it runs."""
    from bullpen.telemetry.worker import WorkerObserver  # noqa: PLC0415 - the extra, only when on

    return WorkerObserver(telemetry, queue, worker_id, worker_name)


def log_trace_ids(settings: Settings) -> TraceIds | None:
    """For JSON log lines: the current trace and span ids, when BULLPEN_OTEL is on."""
    if not settings.bullpen_otel:
        return None
    from bullpen.telemetry.tracing import log_ids  # noqa: PLC0415 - the optional extra, only when on

    return log_ids


def remote_context(carrier: Mapping[str, str] | None) -> AbstractContextManager[None]:
    """Run the block inside a trace context handed over from another process (an isolated
    task's child); does nothing without one."""
    if not carrier:
        return contextlib.nullcontext()
    from bullpen.telemetry.tracing import attached  # noqa: PLC0415 - only with a context to attach

    return attached(carrier)
