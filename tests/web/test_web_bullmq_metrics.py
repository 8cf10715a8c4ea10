"""BullMQ's per-minute metrics read back per epoch minute: checked against BullMQ's own Lua
(`collectMetrics`, run on Redis with finish times across several minutes), against what a Node
worker writes, and against Node's `getMetrics()` over what bullpen's workers write; without
them the overview counts from bullpen's own history."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from collections import Counter

import httpx
import pytest

from bullpen.adapter import JobOptions, QueueClient
from bullpen.web.bullmq_metrics import lay_out, read_metrics
from bullpen.web.history import WINDOWS, history
from tests.helpers import NODE_DIR
from tests.helpers.processes import Proc, start_worker
from tests.helpers.web import wait_for_state, wait_until
from tests.system.test_interop import node

INCLUDES = NODE_DIR / "node_modules" / "bullmq" / "dist" / "cjs" / "commands" / "includes"
MINUTE = 60_000
NOW_MINUTE = 29_000_000
MAX_POINTS = 50


def _collect_metrics_script() -> str:
    """BullMQ's collectMetrics include, with its own include, as one script to EVAL."""
    body = "\n".join(line for line in (INCLUDES / "collectMetrics.lua").read_text().splitlines()
                     if not line.startswith("--- @include"))
    return ("local rcall = redis.call\n" + (INCLUDES / "batches.lua").read_text() + body +
            "\ncollectMetrics(KEYS[1], KEYS[1] .. ':data', ARGV[1], ARGV[2])\nreturn 0\n")


needs_node = pytest.mark.skipif(not INCLUDES.exists(), reason="tests/node is not installed")


def test_the_pending_minute_and_the_gap_after_it() -> None:
    # 4 jobs in minute m (counted since prevTS), the list's head is minute m - 1.
    assert lay_out(10, NOW_MINUTE * MINUTE + 5, 6, [3, 0, 2]) == {
        NOW_MINUTE: 4, NOW_MINUTE - 1: 3, NOW_MINUTE - 2: 0, NOW_MINUTE - 3: 2}


@pytest.mark.interop
@needs_node
async def test_minutes_match_bullmq_collect_metrics(client: QueueClient) -> None:
    rng = random.Random(3)
    finished = sorted(NOW_MINUTE * MINUTE - rng.randrange(0, 20 * MINUTE) for _ in range(300))
    key = client.keys.bullmq("metrics:completed")
    script = client.redis.register_script(_collect_metrics_script())
    for at_ms in finished:
        await script(keys=[key], args=[MAX_POINTS, at_ms])
    found = await read_metrics(client, "completed", MAX_POINTS)
    expected = Counter(at_ms // MINUTE for at_ms in finished)
    first, last = min(expected), max(expected)
    assert found.recorded and found.total == len(finished)
    assert {minute: count for minute, count in found.per_minute.items() if count} == expected
    assert set(found.per_minute) == set(range(first, last + 1))
    assert not (await read_metrics(client, "failed", MAX_POINTS)).recorded


@pytest.mark.interop
@needs_node
async def test_what_a_node_worker_records_reads_back(client: QueueClient, redis_url: str,
                                                     queue_name: str) -> None:
    """A Node BullMQ worker with `metrics: {maxDataPoints}` writes the keys; bullpen reads the
    jobs it finished in the minutes they finished in."""
    ids = [await client.add("node.job", {"fail": n % 4 == 0}, JobOptions()) for n in range(8)]
    worker = await asyncio.to_thread(
        subprocess.run, ["node", str(NODE_DIR / "peer.mjs"), redis_url, queue_name, "work", "3"],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PEER_METRICS_MAX_DATA_POINTS": "60"})
    assert worker.returncode == 0, worker.stderr
    completed = await read_metrics(client, "completed", 60)
    failed = await read_metrics(client, "failed", 60)
    assert completed.recorded and failed.recorded
    assert (completed.total, failed.total) == (6, 2)
    finished = [int(str(await client.redis.hget(client.keys.bullmq(job_id), "finishedOn")))
                for job_id in ids]
    assert sum(completed.per_minute.values()) + sum(failed.per_minute.values()) == 8
    assert set(completed.per_minute) | set(failed.per_minute) >= {at // MINUTE
                                                                   for at in finished}
    # The overview's counts for the whole queue are BullMQ's own.
    shown = await history(client, WINDOWS["1h"], None, [])
    assert shown.counts_source == "bullmq"
    assert [sum(value or 0 for value in line.values) for line in shown.charts[0].lines] == [6, 2]


@pytest.mark.interop
@needs_node
async def test_bullpen_workers_keep_the_metrics_node_reads(http: httpx.AsyncClient,
                                                           client: QueueClient, worker: Proc,
                                                           redis_url: str,
                                                           queue_name: str) -> None:
    """WORKER_METRICS_MAX_DATA_POINTS (on by default): bullpen's finish writes BullMQ's metrics;
    Node's Queue.getMetrics() reads the numbers the overview shows."""
    ok = [(await http.post("/api/jobs", json={"task": "test.record", "data": {"n": n}})).json()
          ["id"] for n in range(5)]
    bad = [(await http.post("/api/jobs", json={"task": "test.give_up"})).json()["id"]
           for _ in range(2)]
    for job_id in ok:
        await wait_for_state(http, job_id, "completed")
    for job_id in bad:
        await wait_for_state(http, job_id, "failed")
    for outcome, count in (("completed", 5), ("failed", 2)):
        ours = await read_metrics(client, outcome, 60)
        [theirs] = await asyncio.to_thread(node, redis_url, queue_name, "metrics", outcome)
        assert ours.total == int(theirs["meta"]["count"]) == count
        laid = lay_out(int(theirs["meta"]["count"]), int(theirs["meta"]["prevTS"]),
                       int(theirs["meta"]["prevCount"]), [int(v) for v in theirs["data"]])
        assert laid == ours.per_minute and sum(laid.values()) == count
    shown = (await http.get("/api/history")).json()
    assert shown["counts_source"] == "bullmq"


async def test_without_bullmq_metrics_the_counts_are_bullpens(
        http: httpx.AsyncClient, client: QueueClient, web_env: dict[str, str]) -> None:
    worker = start_worker({**web_env, "WORKER_METRICS_MAX_DATA_POINTS": "0"})
    try:
        ids = [(await http.post("/api/jobs", json={"task": "test.record"})).json()["id"]
               for _ in range(3)]
        for job_id in ids:
            await wait_for_state(http, job_id, "completed")

        async def counted() -> bool:
            shown = (await http.get("/api/history")).json()
            return bool(sum(v or 0 for v in shown["charts"][0]["lines"][0]["values"]) == 3)

        await wait_until(counted)
    finally:
        worker.kill()
    shown = (await http.get("/api/history")).json()
    assert shown["counts_source"] == "bullpen"
    assert not await client.redis.exists(client.keys.bullmq("metrics:completed"))
    assert "no worker on this queue keeps BullMQ" in (await http.get("/")).text


@pytest.mark.interop
@needs_node
async def test_memory_of_a_week_of_bullmq_metrics(client: QueueClient) -> None:
    """docs/dashboard.md's figure for BullMQ's part of the history: the default 10,080 points
    (WORKER_METRICS_MAX_DATA_POINTS), as BullMQ's own script fills them."""
    key = client.keys.bullmq("metrics:completed")
    script = client.redis.register_script(_collect_metrics_script())
    rng = random.Random(5)
    week = 10_080
    at_ms = (NOW_MINUTE - week - 60) * MINUTE
    while at_ms < NOW_MINUTE * MINUTE:
        await script(keys=[key], args=[week, at_ms])
        at_ms += rng.randrange(1, 20) * MINUTE + rng.randrange(MINUTE)
    assert await client.redis.llen(f"{key}:data") == week
    used = sum([await client.redis.memory_usage(name) or 0 for name in (key, f"{key}:data")])
    print(f"BullMQ metrics, one outcome, a week: {used / 1024:.0f} KiB")
    assert used < 64 * 1024
