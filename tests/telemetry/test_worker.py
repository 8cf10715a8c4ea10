"""The worker's spans and metrics, from real `bullpen worker` processes: a CONSUMER span per
attempt under the producer's context (Node BullMQ's names), finish spans, metrics, log ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from opentelemetry import trace

from bullpen import Client
from tests.helpers.otel import named, observed_env, one, read_spans, recorded
from tests.helpers.processes import eventually, run_cli, running_worker

tracer = trace.get_tracer("tests")


@pytest.fixture
def observed(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> dict[str, str]:
    return observed_env(env, tmp_path, monkeypatch)


def _worker_spans(env: dict[str, str], name: str, count: int) -> list[dict[str, Any]]:
    path = Path(env["OBSERVED_SPANS"])
    eventually(lambda: len(named(read_spans(path), name)) >= count, timeout=15)
    return read_spans(path)


def _parent_in_tm(opts_json: str) -> tuple[str, str]:
    """(trace id, span id) of the traceparent stored in a job's opts.tm, as Node stores it."""
    carrier = json.loads(json.loads(opts_json)["tm"])
    _version, trace_id, span_id, _flags = carrier["traceparent"].split("-")
    return trace_id, span_id


async def test_a_trace_started_in_a_test_continues_through_redis_into_the_worker(
        observed: dict[str, str], queue_name: str, raw_redis: aioredis.Redis) -> None:
    with running_worker(observed) as worker:
        async with Client() as client:
            with tracer.start_as_current_span("POST /signup"):
                job = await client.enqueue("traced.work", {"n": 1})
            assert await job.wait(timeout=15) == {"ok": True, "data": {"n": 1}}
        spans = _worker_spans(observed, f"complete {queue_name}", 1)
    app, add = one(recorded(), "POST /signup"), one(recorded(), f"add {queue_name}.traced.work")
    assert add["kind"] == "PRODUCER" and add["parent_id"] == app["span_id"]
    assert add["attributes"] == {"bullmq.queue.name": queue_name, "bullmq.queue.operation": "add",
                                 "bullmq.job.name": "traced.work", "bullmq.job.id": job.id}
    # Stored where Node's bullmq-otel stores it: opts.tm, the JSON of the W3C carrier.
    opts = await raw_redis.hget(f"bull:{queue_name}:{job.id}", "opts")
    assert _parent_in_tm(str(opts)) == (app["trace_id"], add["span_id"])

    process = one(spans, f"process {queue_name}")
    assert process["kind"] == "CONSUMER" and process["trace_id"] == app["trace_id"]
    assert process["parent_id"] == add["span_id"]
    attributes = process["attributes"]
    assert {key: attributes[key] for key in (
        "bullmq.queue.name", "bullmq.queue.operation", "bullmq.job.id", "bullmq.job.name",
        "bullmq.job.attempts.made")} == {
        "bullmq.queue.name": queue_name, "bullmq.queue.operation": "process",
        "bullmq.job.id": job.id, "bullmq.job.name": "traced.work",
        "bullmq.job.attempts.made": 1}
    assert attributes["bullmq.worker.id"] and attributes["bullmq.worker.name"]
    assert 0 < attributes["bullmq.job.processed.timestamp"] <= attributes[
        "bullmq.job.attempt_finished_timestamp"]
    assert process["events"] == [{"name": "job completed", "attributes": {
        "bullmq.job.result": '{"ok":true,"data":{"n":1}}'}}]
    assert process["pid"] == worker.popen.pid
    assert one(spans, "user-work")["parent_id"] == process["span_id"]
    complete = one(spans, f"complete {queue_name}")
    assert complete["kind"] == "INTERNAL" and complete["parent_id"] == process["span_id"]
    assert complete["attributes"]["bullmq.queue.operation"] == "complete"


async def test_a_bulk_enqueue_is_one_addbulk_span_every_job_continues(
        observed: dict[str, str], queue_name: str) -> None:
    with running_worker(observed):
        async with Client() as client:
            jobs = await client.enqueue_many([("traced.work", {"n": 1}), ("traced.sync", {})])
            for job in jobs:
                await job.wait(timeout=15)
        spans = _worker_spans(observed, f"complete {queue_name}", 2)
    bulk = one(recorded(), f"addBulk {queue_name}")
    assert bulk["kind"] == "PRODUCER" and bulk["attributes"] == {
        "bullmq.queue.name": queue_name, "bullmq.queue.operation": "addBulk",
        "bullmq.job.bulk.names": ["traced.work", "traced.sync"], "bullmq.job.bulk.count": 2}
    processes = named(spans, f"process {queue_name}")
    assert sorted(span["attributes"]["bullmq.job.id"] for span in processes) == sorted(
        job.id for job in jobs)
    assert {(span["trace_id"], span["parent_id"]) for span in processes} == {
        (bulk["trace_id"], bulk["span_id"])}
    # A `def` handler runs in a thread, inside its job's span all the same.
    thread_process = next(span for span in processes
                          if span["attributes"]["bullmq.job.name"] == "traced.sync")
    assert one(spans, "user-thread-work")["parent_id"] == thread_process["span_id"]


async def test_each_retry_is_a_new_consumer_span_under_the_producer_as_in_node(
        observed: dict[str, str], queue_name: str, raw_redis: aioredis.Redis) -> None:
    with running_worker(observed):
        async with Client() as client:
            job = await client.enqueue("traced.flaky", attempts=2)
            assert await job.wait(timeout=15) == "sent"
        spans = _worker_spans(observed, f"complete {queue_name}", 1)
    add = one(recorded(), f"add {queue_name}.traced.flaky")
    first, second = sorted(named(spans, f"process {queue_name}"),
                           key=lambda span: span["attributes"]["bullmq.job.attempts.made"])
    assert [first["parent_id"], second["parent_id"]] == [add["span_id"]] * 2
    assert first["attributes"]["bullmq.job.attempts.made"] == 1
    assert first["events"][0] == {"name": "job failed", "attributes": {
        "bullmq.job.failed.reason": "smtp down"}}
    assert first["status"] == "ERROR" and second["status"] == "UNSET"
    assert second["attributes"]["bullmq.job.attempts.made"] == 2
    delay = one(spans, f"delay {queue_name}")
    assert delay["parent_id"] == first["span_id"]
    assert one(spans, f"complete {queue_name}")["parent_id"] == second["span_id"]
    # Node's moveToFailed also writes the retry step's context in a hash field `tm`.
    stored = json.loads(str(await raw_redis.hget(f"bull:{queue_name}:{job.id}", "tm")))
    assert stored["traceparent"].split("-")[1:3] == [delay["trace_id"], delay["span_id"]]


async def test_an_isolated_handler_s_spans_are_children_of_its_job_s_span(
        observed: dict[str, str], queue_name: str) -> None:
    with running_worker(observed) as worker:
        async with Client() as client:
            assert await (await client.enqueue("traced.isolated")).wait(timeout=30) == "child"
        _worker_spans(observed, "user-child-work", 1)  # the child's, written by the child
        spans = _worker_spans(observed, f"process {queue_name}", 1)  # the worker's, after it
    child, process = one(spans, "user-child-work"), one(spans, f"process {queue_name}")
    assert child["parent_id"] == process["span_id"] and child["trace_id"] == process["trace_id"]
    assert child["pid"] != worker.popen.pid == process["pid"]


async def test_bullpen_enqueue_opens_a_producer_span_the_worker_continues(
        observed: dict[str, str], queue_name: str) -> None:
    with running_worker(observed):
        result = run_cli(["enqueue", "traced.work", "--data", '{"cli": true}'], observed)
        assert result.returncode == 0, result.stderr
        job_id = result.stdout.strip()
        spans = _worker_spans(observed, f"complete {queue_name}", 1)
    add = one(spans, f"add {queue_name}.traced.work")
    process = one(spans, f"process {queue_name}")
    assert add["attributes"]["bullmq.job.id"] == job_id and add["kind"] == "PRODUCER"
    assert process["parent_id"] == add["span_id"] and process["pid"] != add["pid"]


async def test_schedule_ticks_follow_node_each_tick_s_job_keeps_the_registering_context(
        observed: dict[str, str], queue_name: str) -> None:
    env = {**observed, "OBSERVED_EVERY_MS": "300"}
    with running_worker(env):
        spans = _worker_spans(env, f"process {queue_name}", 3)
    registered = [span for span in named(spans, f"add {queue_name}.traced.work")
                  if span["parent_id"] is None and not span["links"]]
    assert len(registered) == 1  # the worker's reconcile, as Node's upsertJobScheduler
    upsert = registered[0]
    assert upsert["attributes"]["bullmq.job.scheduler.id"] == "traced-tick"
    ticks = named(spans, f"process {queue_name}")
    assert {(span["trace_id"], span["parent_id"]) for span in ticks} == {
        (upsert["trace_id"], upsert["span_id"])}
    # Each next iteration is its own trace (as Node's worker makes it), linked to the upsert.
    nexts = [span for span in named(spans, f"add {queue_name}.traced.work") if span["links"]]
    assert len(nexts) >= 3 and {span["parent_id"] for span in nexts} == {None}
    assert all(span["links"] == [upsert["span_id"]] and span["trace_id"] != upsert["trace_id"]
               for span in nexts)
    assert all(span["attributes"]["bullmq.job.scheduler.id"] == "traced-tick" for span in nexts)


async def test_json_log_lines_carry_the_job_s_trace_and_span_ids(
        observed: dict[str, str], queue_name: str) -> None:
    env = {**observed, "LOG_FORMAT": "json"}
    with running_worker(env) as worker:
        async with Client() as client:
            job = await client.enqueue("traced.work")
            await job.wait(timeout=15)
        spans = _worker_spans(env, f"process {queue_name}", 1)
        line = json.loads(worker.wait_for(f"Processing job {job.id} "))
    process = one(spans, f"process {queue_name}")
    assert (line["trace_id"], line["span_id"]) == (process["trace_id"], process["span_id"])
    started = json.loads(worker.wait_for("Worker started"))
    assert "trace_id" not in started  # outside any span


def _points(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The last export's data points per metric name (cumulative)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = [line for line in text.split("\n")[:-1] if line]  # whole lines only
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in (json.loads(lines[-1])["resource_metrics"] if lines else []):
        for scope in resource["scope_metrics"]:
            if scope["scope"]["name"] == "bullmq":
                for metric in scope["metrics"]:
                    found[metric["name"]] = metric["data"]["data_points"]
    return found


async def test_metrics_use_bullmq_s_names_and_attributes(
        observed: dict[str, str], queue_name: str) -> None:
    with running_worker(observed):
        async with Client() as client:
            await (await client.enqueue("traced.work")).wait(timeout=15)
            await (await client.enqueue("traced.flaky", attempts=2)).wait(timeout=15)
        path = Path(observed["OBSERVED_METRICS"])

        def exported() -> bool:
            points = _points(path)
            return sum(int(point["value"]) for point in points.get("bullmq.jobs.completed", [])
                       ) == 2
        eventually(exported, timeout=15)
    points = _points(path)
    completed = {point["attributes"]["bullmq.job.name"]: point for point in
                 points["bullmq.jobs.completed"]}
    assert completed["traced.work"]["attributes"] == {
        "bullmq.queue.name": queue_name, "bullmq.job.name": "traced.work",
        "bullmq.job.state": "completed"}
    assert [point["attributes"]["bullmq.job.state"] for point in points["bullmq.jobs.delayed"]
            ] == ["delayed"]
    durations = sorted((point["attributes"]["bullmq.job.name"],
                        point["attributes"]["bullmq.job.state"], point["count"])
                       for point in points["bullmq.job.duration"])
    assert durations == [("traced.flaky", "completed", 1), ("traced.flaky", "delayed", 1),
                         ("traced.work", "completed", 1)]
