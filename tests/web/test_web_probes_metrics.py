"""/healthz, /readyz and /metrics against real Redis and a real worker."""

from __future__ import annotations

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from bullpen.adapter import QueueClient, SchedulerRecord, now_ms
from bullpen.adapter.worker_names import queue_client_name
from bullpen.reconcile import MISSED_GRACE_MS, missed_runs
from tests.helpers.processes import Proc, start_worker
from tests.helpers.web import wait_for_state, wait_until


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset((k, v) for k, v in sample.labels.items() if k != "queue")
            found[(sample.name, labels)] = sample.value
    return found


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


async def test_readyz_without_then_with_a_worker(http: httpx.AsyncClient, web_env: dict[str, str]
                                                 ) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    response = await http.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] and checks["maxmemory_policy"]["ok"]
    assert not checks["worker_heartbeat"]["ok"]
    assert "bullpen worker" in checks["worker_heartbeat"]["reason"]
    assert "cleanup-exports-hourly" in checks["schedules_registered"]["reason"]


    proc = start_worker(web_env)
    try:
        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await wait_until(ready)
    finally:
        proc.kill()


async def test_readyz_counts_the_workers_of_other_bullmq_apps(
        http: httpx.AsyncClient, web_env: dict[str, str], redis_url: str) -> None:
    node_like = redis.Redis.from_url(redis_url)  # named as a Node BullMQ worker names itself
    node_like.client_setname(f"{queue_client_name('bull', web_env['WORKER_DEFAULT_QUEUE'])}:w:n1")
    try:
        checks = (await http.get("/readyz")).json()["checks"]
    finally:
        node_like.close()
    assert checks["worker_heartbeat"] == {
        "ok": True, "reason": "no bullpen worker heartbeat; 1 other BullMQ worker(s) on the queue"}


async def test_metrics_from_flushed_counters(http: httpx.AsyncClient, client: QueueClient,
                                             worker: Proc) -> None:
    ids = [(await http.post("/api/jobs", json={"task": "test.record", "data": {}})).json()["id"]
           for _ in range(3)]
    failed = (await http.post("/api/jobs", json={"task": "test.give_up"})).json()["id"]
    for job_id in ids:
        await wait_for_state(http, job_id, "completed")
    await wait_for_state(http, failed, "failed")
    await client.redis.hset(client.keys.cleanup_stats, mapping={"deleted_files": 4,
                                                            "deleted_bytes": 4096})

    async def flushed() -> bool:
        text = (await http.get("/metrics")).text
        return _samples(text).get(_key("bullpen_jobs_processed_total", task="test.record")) == 3

    await wait_until(flushed)
    response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    metrics = _samples(response.text)
    assert metrics[_key("bullpen_jobs_failed_total", task="test.give_up")] == 1
    assert metrics[_key("bullpen_jobs", state="completed")] == 3
    assert metrics[_key("bullpen_jobs", state="failed")] == 1
    assert metrics[_key("bullpen_job_duration_seconds_count", task="test.record")] == 3
    assert metrics[_key("bullpen_job_duration_seconds_bucket", task="test.record", le="+Inf")] == 3
    assert metrics[_key("bullpen_job_duration_seconds_bucket", task="test.record", le="60.0")] == 3
    assert metrics[_key("bullpen_cleanup_deleted_files_total")] == 4
    assert metrics[_key("bullpen_cleanup_deleted_bytes_total")] == 4096
    assert metrics[_key("bullpen_workers_alive")] == 1
    assert metrics[_key("bullpen_schedule_registered", schedule="cleanup-exports-hourly")] == 1
    assert metrics[_key("bullpen_schedule_missed_runs", schedule="cleanup-exports-hourly")] == 0


def test_missed_runs_count_fire_times_past_the_grace() -> None:
    now = now_ms()
    every = SchedulerRecord("s", "t", None, 60_000, None, now - MISSED_GRACE_MS - 150_000, 0)
    assert missed_runs(every, now) == 3
    on_time = SchedulerRecord("s", "t", None, 60_000, None, now - 1000, 0)
    assert missed_runs(on_time, now) == 0
    start = (now - MISSED_GRACE_MS) // 60_000 * 60_000 - 5 * 60_000
    cron = SchedulerRecord("s", "t", "* * * * *", None, "UTC", start, 0)
    assert missed_runs(cron, now) == 6
