"""Node BullMQ (npm, pinned in tests/node) and bullpen on the same queues, both directions."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import signal
import socket
import subprocess
import threading
import time
from typing import Any

import httpx
import pytest
import redis

from bullpen.adapter import JobOptions, QueueClient
from bullpen.definitions.schedule import ScheduledJob
from bullpen.producer import job_options
from bullpen.reconcile import reconcile
from bullpen.schedules import scheduled_jobs
from bullpen.settings import load_settings
from bullpen.web import create_app
from tests.helpers import NODE_DIR
from tests.helpers.processes import Fleet, Proc, eventually, recorded_runs, run_cli, start_worker

pytestmark = pytest.mark.interop

PEER = str(NODE_DIR / "peer.mjs")
DATA = {"text": "héllo wörld — 日本語 🚀", "quote": "it's \"quoted\"\n",
        "nested": {"list": [1, 2.5, None, True, {"deep": ["ü", []]}], "empty": {}}}


def node(url: str, queue: str, *args: str, timeout: float = 40) -> list[Any]:
    """Run one peer.mjs command; its JSON output lines."""
    result = subprocess.run(["node", PEER, url, queue, *args], capture_output=True, text=True,
                            timeout=timeout, cwd=NODE_DIR, check=False)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class NodeWorker:
    """`peer.mjs work`: a Node BullMQ worker whose finished jobs arrive as JSON lines."""

    def __init__(self, url: str, queue: str, seconds: float, record: bool = False) -> None:
        args = ["node", PEER, url, queue, "work", str(seconds)] + (["record"] if record else [])
        self.popen = subprocess.Popen(args, cwd=NODE_DIR, stdout=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        eventually(lambda: {"ready": True} in self.lines, timeout=20)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(json.loads(line))

    def finished(self, job_id: str) -> dict[str, Any] | None:
        return next((line for line in self.lines if line.get("id") == job_id), None)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        self.popen.wait(20)
        self._reader.join(2)


def _tick(run: dict[str, Any]) -> int:
    return int(str(run["job_id"]).rsplit(":", 1)[1])


def _forget(url: str, queue: str) -> None:
    connection = redis.Redis.from_url(url)
    try:
        keys = list(connection.scan_iter(match=f"bull:{queue}:*", count=1000))
        if keys:
            connection.delete(*keys)
    finally:
        connection.close()


async def test_node_producer_to_bullpen_worker_round_trips_data_and_result(
        app_env: dict[str, str], client: QueueClient) -> None:
    url, queue = app_env["WORKER_REDIS_URL"], app_env["WORKER_DEFAULT_QUEUE"]
    worker = start_worker(app_env)
    try:
        result = node(url, queue, "add", "test.record", json.dumps(DATA))[0]
    finally:
        worker.signal()
        worker.wait()
    assert result["returnvalue"] == {"echo": DATA}
    record = await client.get_job(str(result["id"]))
    assert record is not None and record.state == "completed"
    assert record.data == DATA and record.return_value == {"echo": DATA}


async def test_bullpen_enqueue_to_node_worker_round_trips_data_and_result(
        app_env: dict[str, str], client: QueueClient) -> None:
    url, queue = app_env["WORKER_REDIS_URL"], app_env["WORKER_DEFAULT_QUEUE"]
    peer = NodeWorker(url, queue, seconds=30)
    try:
        enqueued = run_cli(["enqueue", "test.record", "--data", json.dumps(DATA)], app_env)
        assert enqueued.returncode == 0, enqueued.stderr
        job_id = enqueued.stdout.strip()
        eventually(lambda: peer.finished(job_id) is not None, timeout=15)
    finally:
        peer.stop()
    expected = {"node": True, "name": "test.record", "data": DATA}
    assert peer.finished(job_id) == {"id": job_id, "name": "test.record", "data": DATA,
                                     "returnvalue": expected}
    record = await client.get_job(job_id)
    assert record is not None and record.state == "completed" and record.return_value == expected


async def test_node_and_bullpen_share_a_second_queue_both_ways(
        app_env: dict[str, str], client: QueueClient) -> None:
    url, default = app_env["WORKER_REDIS_URL"], app_env["WORKER_DEFAULT_QUEUE"]
    second = f"{default}-second"
    env = {**app_env, "SAMPLE_TASK_QUEUES": json.dumps({"test.record": second})}
    other = QueueClient(url, second)
    worker = start_worker(env, "--queue", default, "--queue", f"{second}=2")
    try:
        worker.wait_for(f"ready to process jobs from queue: {second}")
        from_node = node(url, second, "add", "test.record", json.dumps(DATA))[0]
    finally:
        worker.signal()
        worker.wait()
    assert from_node["returnvalue"] == {"echo": DATA}
    assert [run["queue"] for run in recorded_runs(default)
            if run["job_id"] == from_node["id"]] == [second]  # ran once, by bullpen, there
    peer = NodeWorker(url, second, seconds=30)
    try:
        enqueued = run_cli(["enqueue", "test.record", "--data", json.dumps(DATA)], env)
        assert enqueued.returncode == 0 and f"on queue {second}" in enqueued.stderr
        job_id = enqueued.stdout.strip()
        eventually(lambda: peer.finished(job_id) is not None, timeout=15)
    finally:
        peer.stop()
    try:
        record = await other.get_job(job_id)
        assert record is not None and record.state == "completed"
        assert record.return_value == {"node": True, "name": "test.record", "data": DATA}
        assert (await client.get_counts(["completed"]))["completed"] == 0  # none on the default
        counts = node(url, second, "counts")[0]
        listed = json.loads(run_cli(["jobs", "--queue", second, "--json"], env).stdout)
        assert counts["completed"] == listed["counts"]["completed"] == 2
    finally:
        await other.close()


async def test_schedulers_are_listed_by_the_other_side(
        app_env: dict[str, str], client: QueueClient) -> None:
    url, queue = app_env["WORKER_REDIS_URL"], app_env["WORKER_DEFAULT_QUEUE"]
    ours = ScheduledJob("py-nightly", "health.check", pattern="0 15 3 * * *", tz="Europe/Paris",
                        data={"who": "bullpen"})
    await reconcile(client, [ours], JobOptions())
    assert node(url, queue, "upsert", "node-hourly", "0 * * * *", "exports.cleanup") == [
        {"ok": True}]

    listed_by_node = {item["key"]: item for item in node(url, queue, "schedulers")[0]}
    listed_by_us = {record.id: record for record in await client.get_schedulers()}
    assert set(listed_by_node) == set(listed_by_us) == {"py-nightly", "node-hourly"}
    theirs, mine = listed_by_node["py-nightly"], listed_by_us["py-nightly"]
    assert (theirs["name"], theirs["pattern"], theirs["tz"]) == (
        "health.check", "0 15 3 * * *", "Europe/Paris")
    assert theirs["next"] == mine.next_ms and theirs["template"]["data"] == {"who": "bullpen"}
    node_made = listed_by_us["node-hourly"]
    assert (node_made.task_name, node_made.pattern, node_made.next_ms) == (
        "exports.cleanup", "0 * * * *", listed_by_node["node-hourly"]["next"])
    # bullpen leaves a scheduler it did not create alone, and says so.
    again = await reconcile(client, [ours], JobOptions())
    assert again.unchanged == ["py-nightly"] and again.foreign == ["node-hourly"]


@pytest.mark.timeout(60)
async def test_a_six_field_pattern_fires_at_the_same_instants_under_node_and_bullpen(
        app_env: dict[str, str]) -> None:
    url, queue = app_env["WORKER_REDIS_URL"], app_env["WORKER_DEFAULT_QUEUE"]
    node_queue = f"{queue}-node"
    pattern = "*/2 * * * * *"  # seconds first, as Node reads it: every even second
    env = {**app_env, "SAMPLE_SCHEDULES": json.dumps(
        [{"name": "even", "task_name": "test.record", "pattern": pattern}])}
    try:
        node(url, node_queue, "upsert", "even", pattern, "test.record")
        peer = NodeWorker(url, node_queue, seconds=30, record=True)
        ours = Proc(["worker"], env)
        try:
            ours.wait_for("Schedules reconciled")
            await asyncio.sleep(9)
        finally:
            ours.signal()
            ours.wait()
            peer.stop()
        py_ticks = {_tick(run) for run in recorded_runs(queue, url)}
        node_ticks = {_tick(run) for run in recorded_runs(node_queue, url)}
    finally:
        _forget(url, node_queue)
    start = max(min(py_ticks), min(node_ticks))
    end = min(max(py_ticks), max(node_ticks))
    common = sorted(tick for tick in py_ticks | node_ticks if start <= tick <= end)
    assert len(common) >= 3, (sorted(py_ticks), sorted(node_ticks))
    assert {tick for tick in py_ticks if start <= tick <= end} == set(common)
    assert {tick for tick in node_ticks if start <= tick <= end} == set(common)
    assert all(tick % 2000 == 0 for tick in py_ticks | node_ticks)


@pytest.mark.timeout(90)
async def test_a_mixed_fleet_runs_each_tick_once_and_both_sides_count_alike(
        app_env: dict[str, str], client: QueueClient) -> None:

    url, queue = app_env["WORKER_REDIS_URL"], app_env["WORKER_DEFAULT_QUEUE"]
    tick = {"name": "tick", "task_name": "test.record", "pattern": "* * * * * *"}
    env = {**app_env, "SAMPLE_SCHEDULES": json.dumps([tick])}
    # Which side wins a tick is a race, so phases make sure both take part: Node alone (the
    # schedule registered as a bullpen worker would), both together, then bullpen alone.
    peer = NodeWorker(url, queue, seconds=60, record=True)
    ours: Fleet | None = None
    try:
        await reconcile(client, [*scheduled_jobs, ScheduledJob(**tick)],  # type: ignore[arg-type]
                        job_options(load_settings()))
        await asyncio.sleep(3)
        ours = Fleet(env, 2)
        ours.ready("Schedules reconciled")
        await asyncio.sleep(4)
        peer.stop()
        handed_over_at = time.time() * 1000
        # Longer than the 10 s cap on a blocking wait: if Node took the next tick's wake-up
        # marker with it, bullpen finds the due tick on its next poll, late but once.
        await asyncio.sleep(11.5)
        summaries = [proc.wait_for("Schedules reconciled") for proc in ours.procs]
    finally:
        if ours is not None:
            ours.stop()
            ours.kill_all()
        peer.stop()
    runs = [run for run in recorded_runs(queue, url) if run["scheduler"] == "tick"]
    ticks = sorted(_tick(run) for run in runs)
    by_node = [run for run in runs if str(run["worker"]).startswith("node-")]
    late_s = max(float(str(run["at_ms"])) - _tick(run) for run in runs) / 1000
    gaps = [(a, b) for a, b in itertools.pairwise(ticks) if b - a != 1000]
    print(f"mixed fleet: {len(ticks)} ticks, {len(by_node)} run by Node, "
          f"{len(ticks) - len(by_node)} by bullpen; latest run {late_s:.1f} s after its tick; "
          f"gaps {[(b - a) / 1000 for a, b in gaps]}")
    # The workers found the schedule registered as they would have: nothing upserted.
    assert all(line.endswith("0 added, 0 updated, 0 removed, 2 unchanged, 0 foreign")
               for line in summaries), summaries
    assert len(ticks) == len(set(ticks)), "a tick ran twice"
    assert by_node and len(by_node) < len(ticks), "not a mixed fleet"
    # Ticks are consecutive, except that a tick run late after the hand-over resumes the
    # schedule from then: at most one gap, right after Node left, no longer than 11 s.
    assert len(gaps) <= 1, gaps
    for before, after in gaps:
        assert handed_over_at - 1000 <= before and after - before <= 11_000, gaps

    ours_counted = await client.get_counts()
    theirs = node(url, queue, "counts")[0]
    for state in ("waiting", "active", "delayed", "prioritized", "completed", "failed"):
        assert ours_counted[state] == theirs[state], (state, ours_counted, theirs)
    assert ours_counted["completed"] >= len(ticks)


async def test_a_pause_made_by_node_shows_everywhere_bullpen_shows_the_queue(
        app_env: dict[str, str], client: QueueClient) -> None:
    url, queue = app_env["WORKER_REDIS_URL"], app_env["WORKER_DEFAULT_QUEUE"]
    assert node(url, queue, "pause") == [{"paused": True}]
    listed = run_cli(["jobs"], app_env)
    assert f"queue {queue} is PAUSED: workers take no new jobs" in listed.stdout
    assert json.loads(run_cli(["jobs", "--json"], app_env).stdout)["paused"] is True
    doctor = json.loads(run_cli(["doctor", "--json"], app_env).stdout)
    [check] = [check for check in doctor["checks"] if check["name"] == "queue"]
    assert check["status"] == "warn" and "is paused (by bullpen, Node" in check["message"]
    app = create_app(load_settings(), client=client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://localhost") as http:
        assert (await http.get("/api/overview")).json()["paused"] is True
        assert (await http.get("/api/jobs?state=waiting")).json()["paused"] is True
        assert "queue paused" in (await http.get("/jobs/waiting")).text
        assert 'class="tag warn">paused' in (await http.get("/")).text
        metrics = (await http.get("/metrics")).text
        assert f'bullpen_queue_paused{{queue="{queue}"}} 1.0' in metrics


def test_node_peer_answers_quickly() -> None:
    """peer.mjs refuses an unknown command instead of hanging (keeps failures fast)."""
    started = time.monotonic()
    result = subprocess.run(["node", PEER, "redis://127.0.0.1:6379/0", "q", "nope"],
                            capture_output=True, text=True, timeout=20, cwd=NODE_DIR, check=False)
    assert result.returncode == 2 and "unknown command nope" in result.stderr
    assert time.monotonic() - started < 10


async def test_node_lists_each_bullpen_worker_once_and_reads_what_it_recorded(
        app_env: dict[str, str], client: QueueClient) -> None:
    # Port workers named every connection `bull:<queue>` (not base64), so Node's getWorkers()
    # and bull-board saw none; a worker that had logged showed up three times to CLIENT LIST.
    # Node 6 also records which worker processed a job (`processedBy`) and per-minute metrics.
    url, queue = app_env["WORKER_REDIS_URL"], app_env["WORKER_DEFAULT_QUEUE"]
    fleet = Fleet({**app_env, "WORKER_CONCURRENCY": "3"}, 2)
    try:
        fleet.ready()
        ids = [await client.add("test.record", {"n": n}, JobOptions()) for n in range(6)]
        eventually(lambda: len(recorded_runs(queue, url)) == 6, timeout=15)
        listed = node(url, queue, "workers")[0]
        names = {f"{socket.gethostname()}:{proc.popen.pid}" for proc in fleet.procs}
        jobs = [node(url, queue, "job", job_id)[0] for job_id in ids[:2]]
    finally:
        fleet.stop()
        fleet.kill_all()
    base = "bull:" + base64.b64encode(queue.encode()).decode()
    assert sorted(entry["rawname"] for entry in listed) == sorted(
        f"{base}:w:{name}" for name in names)
    assert {entry["name"] for entry in listed} == {queue}
    assert all(job["processedBy"] in names and job["returnvalue"] for job in jobs), jobs
    assert {worker.name for worker in await client.workers()} == set()  # all stopped
    theirs = node(url, queue, "metrics", "completed")[0]
    ours = await client.metrics("completed")
    assert theirs["meta"]["count"] == ours.count >= 6
