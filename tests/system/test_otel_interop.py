"""Traces across Node BullMQ with bullmq-otel and bullpen, both directions, on one queue: the
trace context each side stores in a job is the parent the other side's CONSUMER span takes."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

from bullpen import Client
from tests.helpers import ARTIFACTS, NODE_DIR
from tests.helpers.otel import named, observed_env, one, read_spans, recorded, tree
from tests.helpers.processes import eventually, running_worker

pytestmark = pytest.mark.interop

PEER = str(NODE_DIR / "otel_peer.mjs")
tracer = trace.get_tracer("tests")


@pytest.fixture
def observed(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> dict[str, str]:
    return observed_env(env, tmp_path, monkeypatch)


def _node(url: str, queue: str, *args: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One otel_peer.mjs command: its output lines, and the spans it finished."""
    result = subprocess.run(["node", PEER, url, queue, *args], capture_output=True, text=True,
                            timeout=60, cwd=NODE_DIR, check=False)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return ([line for line in lines if not line.get("span")],
            [line for line in lines if line.get("span")])


async def test_a_node_producer_s_trace_continues_in_a_bullpen_worker(
        observed: dict[str, str], queue_name: str) -> None:
    url = observed["WORKER_REDIS_URL"]
    with running_worker(observed) as worker:
        output, node_spans = _node(url, queue_name, "add", "traced.work", '{"from": "node"}')
        job_id = output[0]["id"]
        path = Path(observed["OBSERVED_SPANS"])
        eventually(lambda: bool(named(read_spans(path), f"complete {queue_name}")), timeout=20)
    spans = read_spans(path)
    app, add = one(node_spans, "POST /signup"), one(node_spans, f"add {queue_name}.traced.work")
    assert add["kind"] == "PRODUCER" and add["parent_id"] == app["span_id"]
    process = one(spans, f"process {queue_name}")
    assert process["trace_id"] == app["trace_id"] and process["parent_id"] == add["span_id"]
    assert process["attributes"]["bullmq.job.id"] == job_id
    assert one(spans, "user-work")["parent_id"] == process["span_id"]
    where = {span["span_id"]: "Node producer" for span in node_spans}
    where.update({span["span_id"]: "bullpen worker" for span in spans})
    drawn = tree([span for span in node_spans + spans if span["trace_id"] == app["trace_id"]],
                 where).replace(queue_name, "<queue>")
    assert drawn.splitlines()[0].startswith("POST /signup")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "otel-trace.txt").write_text(
        "A trace across a Node producer (bullmq-otel), Redis and a bullpen worker, as "
        "tests/system/test_otel_interop.py records it:\n\n" + drawn + "\n", encoding="utf-8")
    assert f"Processing job {job_id} of type traced.work" in worker.output


class _NodeWorker:
    def __init__(self, url: str, queue: str, count: int) -> None:
        self.popen = subprocess.Popen(["node", PEER, url, queue, "work", str(count)],
                                      cwd=NODE_DIR, stdout=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        eventually(lambda: {"ready": True} in self.lines, timeout=20)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(json.loads(line))


async def test_a_bullpen_producer_s_trace_continues_in_a_node_worker(
        observed: dict[str, str], queue_name: str) -> None:
    peer = _NodeWorker(observed["WORKER_REDIS_URL"], queue_name, 2)
    try:
        async with Client(check_tasks=False) as client:
            with tracer.start_as_current_span("POST /reports"):
                job = await client.enqueue("report.build", {"from": "bullpen"})
                bulk = await client.enqueue_many([("report.part", {"n": 1})])
        assert peer.popen.wait(30) == 0
        peer._reader.join(5)
    finally:
        if peer.popen.poll() is None:
            peer.popen.kill()
    node_spans = [line for line in peer.lines if line.get("span")]
    app = one(recorded(), "POST /reports")
    add = one(recorded(), f"add {queue_name}.report.build")
    add_bulk = one(recorded(), f"addBulk {queue_name}")
    by_job = {span["attributes"]["bullmq.job.id"]: span
              for span in named(node_spans, f"process {queue_name}")}
    assert set(by_job) == {job.id, bulk[0].id}
    assert by_job[job.id]["kind"] == "CONSUMER"
    assert (by_job[job.id]["trace_id"], by_job[job.id]["parent_id"]) == (
        app["trace_id"], add["span_id"])
    assert by_job[bulk[0].id]["parent_id"] == add_bulk["span_id"]
    assert by_job[job.id]["attributes"]["bullmq.worker.name"] == "node-peer"
