"""The JSON API through httpx against real Redis, with a real `bullpen worker` where jobs run."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bullpen.adapter import JobOptions, QueueClient
from bullpen.definitions.schedule import ScheduledJob
from bullpen.loader import Definitions, load_registry
from bullpen.settings import Settings
from bullpen.web import create_app
from tests.helpers.processes import Proc, start_worker
from tests.helpers.web import wait_for_state, wait_until


async def _enqueue(http: httpx.AsyncClient, task: str, data: object, **extra: object) -> str:
    response = await http.post("/api/jobs", json={"task": task, "data": data, **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_failed_job_shows_its_failure_and_completes_after_retry(
        http: httpx.AsyncClient, worker: Proc) -> None:
    job_id = await _enqueue(http, "test.flaky", {"succeed_on": 2})
    await wait_for_state(http, job_id, "failed")
    detail = (await http.get(f"/api/jobs/{job_id}")).json()
    assert detail["failed_reason"] == "flaky failure on attempt 1"
    assert "RuntimeError" in detail["stacktrace"][0]
    assert (detail["attempts_made"], detail["attempts_allowed"]) == (1, 1)
    assert detail["data"] == {"succeed_on": 2}

    response = await http.post(f"/api/jobs/{job_id}/retry", json={})
    assert response.json() == {"ok": True, "id": job_id}
    await wait_for_state(http, job_id, "completed")
    detail = (await http.get(f"/api/jobs/{job_id}")).json()
    assert detail["return_value"] == "ok"
    assert detail["duration_ms"] is not None and detail["finished_on_ms"] >= detail["timestamp_ms"]

    # A completed job can be run again too (BullMQ's retry names the state it leaves).
    again = await http.post(f"/api/jobs/{job_id}/retry", json={})
    assert again.status_code == 200, again.text
    await wait_until(lambda: _finished_after(http, job_id, detail["finished_on_ms"]))
    assert (await http.get(f"/api/jobs/{job_id}")).json()["state"] == "completed"


async def _finished_after(http: httpx.AsyncClient, job_id: str, finished_ms: int) -> bool:
    detail = (await http.get(f"/api/jobs/{job_id}")).json()
    return bool(detail["state"] == "completed" and detail["finished_on_ms"] > finished_ms)


async def test_overview_counts_throughput_and_failure_rate(http: httpx.AsyncClient,
                                                           worker: Proc) -> None:
    done = [await _enqueue(http, "test.record", {"n": n}) for n in range(3)]
    failed = await _enqueue(http, "test.give_up", {})
    for job_id in done:
        await wait_for_state(http, job_id, "completed")
    await wait_for_state(http, failed, "failed")
    overview = (await http.get("/api/overview")).json()
    assert overview["counts"]["completed"] == 3 and overview["counts"]["failed"] == 1
    assert overview["last_hour"] == {"completed": 3, "failed": 1, "per_minute": 0.07,
                                     "failure_rate": 0.25}
    assert overview["workers"] == 1
    assert "test.record" in overview["tasks"]


async def test_job_logs_and_workers(http: httpx.AsyncClient, worker: Proc) -> None:
    job_id = await _enqueue(http, "test.record", {"x": 1})
    await wait_for_state(http, job_id, "completed")
    detail = (await http.get(f"/api/jobs/{job_id}")).json()
    assert detail["logs"] == [f"recorded {job_id}"]
    assert detail["return_value"] == {"echo": {"x": 1}}
    workers = (await http.get("/api/workers")).json()
    assert len(workers) == 1 and workers[0]["concurrency"] == 5
    assert workers[0]["age_s"] < 5


async def test_lists_paginate_and_filter_by_task(http: httpx.AsyncClient) -> None:
    records = [await _enqueue(http, "test.record", {"n": n}) for n in range(3)]
    for _ in range(2):
        await _enqueue(http, "test.slow", {})
    first = (await http.get("/api/jobs?state=waiting&task=test.record&size=2")).json()
    assert [job["name"] for job in first["jobs"]] == ["test.record"] * 2
    assert first["has_next"] is True
    second = (await http.get("/api/jobs?state=waiting&task=test.record&size=2&page=2")).json()
    assert len(second["jobs"]) == 1 and second["has_next"] is False
    seen = {job["id"] for job in first["jobs"] + second["jobs"]}
    assert seen == set(records)
    everything = (await http.get("/api/jobs?state=waiting&size=4")).json()
    assert everything["total"] == 5 and len(everything["jobs"]) == 4 and everything["has_next"]
    bad = await http.get("/api/jobs?state=sleeping")
    assert bad.status_code == 400 and "unknown job state 'sleeping'" in bad.json()["error"]


async def test_promote_remove_pause_and_resume(http: httpx.AsyncClient) -> None:
    delayed = await _enqueue(http, "test.record", {}, delay_ms=600_000)
    assert (await http.get(f"/api/jobs/{delayed}")).json()["state"] == "delayed"
    assert (await http.post(f"/api/jobs/{delayed}/promote", json={})).status_code == 200
    assert (await http.get(f"/api/jobs/{delayed}")).json()["state"] == "waiting"
    again = await http.post(f"/api/jobs/{delayed}/promote", json={})
    assert again.status_code == 409 and "only delayed jobs" in again.json()["error"]

    assert (await http.post(f"/api/jobs/{delayed}/remove", json={})).status_code == 200
    gone = await http.get(f"/api/jobs/{delayed}")
    assert gone.status_code == 404
    missing = await http.post("/api/jobs/nope/retry", json={})
    assert missing.status_code == 404 and "'nope' not found" in missing.json()["error"]

    assert (await http.post("/api/queue/pause", json={})).json()["paused"] is True
    assert (await http.get("/api/overview")).json()["paused"] is True
    assert (await http.post("/api/queue/resume", json={})).json()["paused"] is False


async def test_retry_all_failed(http: httpx.AsyncClient, worker: Proc) -> None:
    jobs = [await _enqueue(http, "test.flaky", {"succeed_on": 2}) for _ in range(2)]
    for job_id in jobs:
        await wait_for_state(http, job_id, "failed")
    retried = await http.post("/api/queue/retry-failed", json={})
    assert retried.json() == {"ok": True, "retried": 2}
    for job_id in jobs:
        await wait_for_state(http, job_id, "completed")


async def test_enqueue_validates_task_and_data(http: httpx.AsyncClient) -> None:
    unknown = await http.post("/api/jobs", json={"task": "no.such", "data": {}})
    assert unknown.status_code == 400
    assert "no handler registered for task 'no.such'" in unknown.json()["error"]
    assert "test.record" in unknown.json()["error"]
    big = await http.post("/api/jobs", json={"task": "test.record", "data": {"x": "y" * 600_000}})
    assert big.status_code == 400 and "JOB_MAX_DATA_BYTES" in big.json()["error"]
    broken = await http.post("/api/jobs", content=b"{nope",
                             headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    counts = (await http.get("/api/overview")).json()["counts"]
    assert sum(counts.values()) == 0


async def test_schedules_declared_registered_and_run_now(
        http: httpx.AsyncClient, web_env: dict[str, str], monkeypatch: object) -> None:
    rows = (await http.get("/api/schedules")).json()
    declared = {row["name"]: row for row in rows}
    assert declared["cleanup-exports-hourly"]["status"] == "missing"
    assert declared["cleanup-exports-hourly"]["description"] == "Every hour"
    response = await http.post("/api/schedules/cleanup-exports-hourly/run", json={})
    assert response.status_code == 201
    job = (await http.get(f"/api/jobs/{response.json()['id']}")).json()
    assert job["name"] == "exports.cleanup" and job["state"] == "waiting"
    unknown = await http.post("/api/schedules/nightly/run", json={})
    assert unknown.status_code == 404 and "cleanup-exports-hourly" in unknown.json()["error"]


async def test_schedule_last_run_after_the_worker_fires_it(
        web_env: dict[str, str], web_settings: Settings, client: QueueClient) -> None:
    tick: dict[str, Any] = {"name": "tick", "task_name": "test.record", "every_ms": 300,
                            "data": {"s": 1}}
    proc = start_worker({**web_env, "SAMPLE_SCHEDULES": json.dumps([tick])})
    try:
        # Declared here too: the sample app's schedules module is read once per process.
        app = create_app(web_settings, client=client,
                         definitions=Definitions(load_registry(None), [ScheduledJob(**tick)]))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            async def tick_row() -> dict[str, Any]:
                rows = (await http.get("/api/schedules")).json()
                return next(row for row in rows if row["name"] == "tick")

            async def ran() -> bool:
                row = await tick_row()
                return row["status"] == "registered" and row["last_run"] is not None

            await wait_until(ran)
            row = await tick_row()
    finally:
        proc.kill()
    assert row["last_run"]["outcome"] == "completed"
    assert row["last_run"]["lateness_ms"] >= 0 and row["missed_runs"] == 0
    assert row["description"] == "Every 300 ms"


async def test_removing_a_schedulers_next_run_is_refused_and_the_run_stays(
        http: httpx.AsyncClient, client: QueueClient) -> None:
    """BullMQ refuses it (Node's Queue.remove throws); the API says so instead of 'removed'."""
    await client.upsert_scheduler("nightly-report", "test.record", {}, pattern="0 3 * * *",
                                  every_ms=None, tz=None, options=JobOptions())
    [next_run] = await client.get_jobs("delayed")
    refused = await http.post(f"/api/jobs/{next_run.id}/remove", json={})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == (
        f"job {next_run.id!r} is the next run of a job scheduler; remove or change its schedule "
        "instead (the Schedules page, or the app's schedules)")
    assert (await http.get(f"/api/jobs/{next_run.id}")).json()["state"] == "delayed"
    bulk = await http.post("/api/jobs/bulk", json={"action": "remove", "ids": [next_run.id]})
    assert bulk.json()["done"] == [] and next_run.id in bulk.json()["refused"]
