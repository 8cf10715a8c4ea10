"""The trace context a job carries (Node's `tm`), read and written without Redis; the setting
that switches tracing on; and that nothing of OpenTelemetry loads while it is off."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

from bullpen import SyncClient
from bullpen.errors import SettingsError
from bullpen.settings import Settings, load_settings
from bullpen.telemetry import telemetry_for
from bullpen.telemetry.tracing import context_of, metadata_of
from tests.helpers.otel import memory_exporter, observed_env, one, recorded

NODE_TM = '{"traceparent":"00-6c9b5ae6553d0f9cb595c718aecca09c-048c283f83c62253-01"}'


def test_node_s_metadata_gives_the_remote_producer_span_as_parent() -> None:
    parent = trace.get_current_span(context_of(NODE_TM)).get_span_context()
    assert parent.is_remote and parent.is_valid
    assert format(parent.trace_id, "032x") == "6c9b5ae6553d0f9cb595c718aecca09c"
    assert format(parent.span_id, "016x") == "048c283f83c62253"


@pytest.mark.parametrize("stored", [None, False, "", "not json", "[1, 2]", '{"traceparent": 7}',
                                    '{"traceparent": "00-zz-yy-01"}'])
def test_a_missing_or_unreadable_tm_means_no_parent_never_an_error(stored: object) -> None:
    found = context_of(stored)
    assert found is None or not trace.get_current_span(found).get_span_context().is_valid


def test_written_metadata_is_compact_json_of_the_w3c_carrier_node_can_parse() -> None:
    memory_exporter()
    assert metadata_of() is None  # outside any span: nothing to carry
    with trace.get_tracer("tests").start_as_current_span("outer") as span:
        written = metadata_of()
    assert written is not None and " " not in written
    carrier = json.loads(written)
    own = span.get_span_context()
    assert carrier["traceparent"].split("-")[1:3] == [format(own.trace_id, "032x"),
                                                      format(own.span_id, "016x")]


def test_tracing_is_off_unless_bullpen_otel_says_so(offline_env: dict[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert telemetry_for(Settings()) is None
    monkeypatch.setenv("BULLPEN_OTEL", "true")
    assert telemetry_for(Settings()) is not None


def test_bullpen_otel_without_the_extra_stops_with_the_fix(
        offline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULLPEN_OTEL", "true")
    real = importlib.util.find_spec

    def find_spec(name: str, *rest: Any) -> Any:
        if name.startswith("opentelemetry"):  # as without the package: its parent is missing
            raise ModuleNotFoundError(f"No module named {name.split('.', maxsplit=1)[0]!r}")
        return real(name, *rest)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert ("BULLPEN_OTEL='true': Value error, OpenTelemetry is not installed; install the "
            "extra (pip install 'bullpen[otel]') or set BULLPEN_OTEL=false") in str(error.value)


def test_with_tracing_off_bullpen_loads_none_of_its_opentelemetry_code(
        offline_env: dict[str, str]) -> None:
    # (redis-py 8 imports the OpenTelemetry API for its own observability when installed.)
    code = ("import sys, bullpen, bullpen.cli, bullpen.runtime.process, bullpen.web.app\n"
            "from bullpen.settings import Settings\n"
            "from bullpen.telemetry import telemetry_for, log_trace_ids\n"
            "assert telemetry_for(Settings()) is None and log_trace_ids(Settings()) is None\n"
            "print(sorted(name for name in sys.modules if name.startswith('bullpen.telemetry.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_sync_client_s_producer_span_is_a_child_of_the_calling_thread_s_span(
        env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        queue_name: str) -> None:
    observed_env(env, tmp_path, monkeypatch)
    with SyncClient() as client, trace.get_tracer("tests").start_as_current_span("view"):
        job = client.enqueue("traced.work")
    view, add = one(recorded(), "view"), one(recorded(), f"add {queue_name}.traced.work")
    assert add["parent_id"] == view["span_id"] and add["attributes"]["bullmq.job.id"] == job.id
