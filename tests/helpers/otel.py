"""OpenTelemetry in tests: the SDK's in-memory exporter in this process, the span files the
worker and CLI processes write (tests/apps/observed_app), and a trace drawn as a tree."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers import APPS_DIR, REPO

Span = dict[str, Any]


@functools.cache
def memory_exporter() -> InMemorySpanExporter:
    """This process's exporter (a tracer provider can be set once per process)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def as_record(span: ReadableSpan) -> Span:
    """A finished span as the observed app writes one (see observed_app._span_line)."""
    context, parent = span.get_span_context(), span.parent
    assert context is not None
    record: dict[str, Any] = {"name": span.name, "kind": span.kind.name,
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
            "parent_id": format(parent.span_id, "016x") if parent else None,
            "attributes": dict(span.attributes or {}),
            "events": [{"name": event.name, "attributes": dict(event.attributes or {})}
                       for event in span.events],
            "links": [format(link.context.span_id, "016x") for link in span.links],
            "status": span.status.status_code.name, "pid": 0}
    result: Span = json.loads(json.dumps(record))  # tuples as lists, as in the span files
    return result


def recorded() -> list[Span]:
    return [as_record(span) for span in memory_exporter().get_finished_spans()]


def read_spans(path: Path) -> list[Span]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def named(spans: Iterable[Span], name: str) -> list[Span]:
    return [span for span in spans if span["name"] == name]


def one(spans: Iterable[Span], name: str) -> Span:
    found = named(spans, name)
    assert len(found) == 1, f"{len(found)} spans named {name!r}: {found}"
    return found[0]


def tree(spans: list[Span], where: dict[str, str]) -> str:
    """The trace as an indented tree, each span with its kind and the process it ran in."""
    children: dict[str | None, list[Span]] = {}
    ids = {span["span_id"] for span in spans}
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def draw(span: Span, prefix: str, last: bool, root: bool) -> None:
        joint = "" if root else ("└── " if last else "├── ")
        lines.append(f"{prefix}{joint}{span['name']}  [{span['kind']}, "
                     f"{where.get(span['span_id'], '?')}]")
        below = children.get(span["span_id"], [])
        for index, child in enumerate(below):
            draw(child, prefix + ("" if root else ("    " if last else "│   ")),
                 index == len(below) - 1, False)

    for root_span in children.get(None, []):
        draw(root_span, "", True, True)
    return "\n".join(lines)


def observed_env(env: dict[str, str], tmp_path: Path, monkeypatch: Any,
                 **extra: str) -> dict[str, str]:
    """`env` with the observed app and tracing on, for this process (its Client) and for the
    processes a test starts; those write their spans to `tmp_path/spans.jsonl`."""
    values = {"BULLPEN_APP": "observed_app", "BULLPEN_OTEL": "true",
              "PYTHONPATH": f"{APPS_DIR}:{REPO}", **extra}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(APPS_DIR))
    memory_exporter().clear()
    # Only the started processes write files: this one keeps its in-memory exporter.
    return {**env, **values, "OBSERVED_SPANS": str(tmp_path / "spans.jsonl"),
            "OBSERVED_METRICS": str(tmp_path / "metrics.jsonl")}
