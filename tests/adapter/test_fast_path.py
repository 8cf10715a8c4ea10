"""The worker's fast path: one script call per job, pipelined commands, and a close that returns.

Counts come from INFO commandstats on a private redis-server (no other client shares it), so
machine load cannot move them. No test here asserts on speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bullpen.adapter import (
    ActiveJob,
    JobOptions,
    QueueClient,
    QueueWorker,
    WorkerOptions,
    connection_kwargs,
)
from bullpen.adapter.pipelining import FLUSH_AT, Link, PipeliningRedis
from tests.helpers.redis_server import PrivateRedis


@pytest.fixture
def private_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own, without persistence."""
    server = PrivateRedis(tmp_path / "private-redis", options=("--appendonly", "no")).start()
    yield server.url
    server.stop()


async def _enqueue(url: str, queue: str, count: int) -> None:
    client = QueueClient(url, queue)
    try:
        for index in range(count):
            await client.add("noop", {"i": index}, JobOptions(keep_completed=100))
    finally:
        await client.close()


async def _drain(url: str, queue: str, count: int, concurrency: int) -> QueueWorker:
    done: list[str] = []

    async def handler(job: ActiveJob) -> None:
        done.append(job.record.id)

    worker = QueueWorker(url, queue, "bull", WorkerOptions(concurrency=concurrency), handler)
    worker.start(on_error=lambda exc: None)
    deadline = time.monotonic() + 60
    while len(done) < count:
        assert time.monotonic() < deadline, f"only {len(done)} of {count} jobs ran"
        await asyncio.sleep(0.02)
    assert len(set(done)) == count  # each job once
    return worker


@pytest.mark.parametrize("concurrency", [1, 20])
async def test_a_busy_worker_makes_one_script_call_per_job(private_url: str,
                                                           concurrency: int) -> None:
    # The port finished a job and fetched the next in two EVALSHAs; Node BullMQ does it in one.
    # Start-up and the drained queue's last polls cost about 100 calls in all, hence 3000 jobs.
    count = 3000
    await _enqueue(private_url, "fast", count)
    sync = redis.Redis.from_url(private_url, decode_responses=True)
    sync.config_resetstat()
    worker = await _drain(private_url, "fast", count, concurrency)
    calls = {name: int(value["calls"]) for name, value in sync.info("commandstats").items()}
    await worker.close(5)
    sync.close()
    assert calls.get("cmdstat_evalsha", 0) / count <= 1.05, calls


async def test_concurrent_jobs_share_one_command_connection(private_url: str) -> None:
    # Pipelined over one connection like ioredis, not one connection per job in flight; the
    # blocking connection is the only one named, as Node's (BullMQ tools count it once).
    await _enqueue(private_url, "shared", 400)
    sync = redis.Redis.from_url(private_url, decode_responses=True)
    before = {client["id"] for client in sync.client_list()}
    worker = await _drain(private_url, "shared", 400, concurrency=50)
    added = [client for client in sync.client_list() if client["id"] not in before]
    await worker.close(5)
    sync.close()
    assert len(added) == 2, added
    assert sorted(client["name"] for client in added) == ["", f"bull:c2hhcmVk:w:{worker.name}"]


async def test_close_under_load_returns_promptly_every_time(private_url: str) -> None:
    # A pooled client once made close() hang for more than 10 s; the pipelined one must not.
    await _enqueue(private_url, "closing", 3000)
    ran: list[str] = []

    async def handler(job: ActiveJob) -> None:
        ran.append(job.record.id)
        await asyncio.sleep(0.001)

    for _round in range(5):
        worker = QueueWorker(private_url, "closing", "bull", WorkerOptions(concurrency=50),
                             handler)
        worker.start(on_error=lambda exc: None)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        finished = await worker.close(10)
        assert finished, "close() abandoned active jobs"
        assert time.monotonic() - started < 3
    assert ran, "no job ran"
    sync = redis.Redis.from_url(private_url, decode_responses=True)
    assert sync.llen("bull:closing:active") == 0  # nothing left locked by a closed worker
    sync.close()


async def test_pipelined_client_keeps_replies_errors_and_scripts_apart(private_url: str) -> None:

    client = PipeliningRedis(decode_responses=True, **connection_kwargs(private_url))
    try:
        await client.set("text", "x")
        results: list[Any] = await asyncio.gather(
            *(client.incr("counter") for _ in range(100)), client.incr("text"),
            client.get("text"), return_exceptions=True)
        assert results[:100] == list(range(1, 101))  # in order, one reply each
        assert isinstance(results[100], redis.ResponseError)
        assert results[101] == "x"
        script = client.register_script("return ARGV[1]")
        assert await script(args=["a"]) == "a"
        await client.script_flush()
        assert await script(args=["b"]) == "b"  # NOSCRIPT: loaded again, then run
        # It kills its own connection too: its reply may or may not arrive first.
        with contextlib.suppress(redis.ConnectionError):
            await client.execute_command("CLIENT KILL", "SKIPME", "no", "TYPE", "normal")
        assert await client.get("text") == "x"  # the next command connects again
    finally:
        await client.aclose()


async def test_delayed_jobs_start_on_time_not_on_the_server_timer_tick(private_url: str) -> None:
    # Redis ends a blocked BZPOPMIN on its own timer tick (every 100 ms at the default hz 10),
    # so due jobs started 0-100 ms late, 50 ms on average. The worker wakes early and sleeps the
    # rest on its event loop.
    sync = redis.Redis.from_url(private_url)
    sync.config_set("hz", 10)
    sync.close()
    started: dict[str, float] = {}

    async def handler(job: ActiveJob) -> None:
        started[job.record.id] = time.time() * 1000

    worker = QueueWorker(private_url, "timed", "bull", WorkerOptions(concurrency=1), handler)
    worker.start(on_error=lambda exc: None)
    await asyncio.sleep(0.3)
    client = QueueClient(private_url, "timed")
    due: dict[str, float] = {}
    try:
        for delay_ms in (500, 900, 1300, 1700, 2100, 2500):
            due[await client.add("tick", {}, JobOptions(delay_ms=delay_ms))] = (
                time.time() * 1000 + delay_ms)
        deadline = time.monotonic() + 10
        while len(started) < len(due):
            assert time.monotonic() < deadline, started
            await asyncio.sleep(0.02)
    finally:
        await worker.close(5)
        await client.close()
    lateness_ms = [started[job_id] - due_ms for job_id, due_ms in due.items()]
    assert sorted(lateness_ms)[len(lateness_ms) // 2] < 30, lateness_ms


async def test_many_commands_of_one_turn_go_out_a_few_at_a_time(
        private_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # One write for all of them left Redis idle while the worker handled a batch of replies,
    # and the worker idle while Redis ran the next batch (c=50 ran at about half the rate).
    writes: list[int] = []
    send = Link.send

    def counted(link: Link, packed: bytes, waiters: list[Any]) -> None:
        writes.append(len(waiters))
        send(link, packed, waiters)

    monkeypatch.setattr(Link, "send", counted)
    client = PipeliningRedis(decode_responses=True, **connection_kwargs(private_url))
    try:
        await client.ping()
        writes.clear()
        results = await asyncio.gather(*(client.incr("spread") for _ in range(50)))
        assert results == list(range(1, 51))
        assert max(writes) <= FLUSH_AT
        assert len(writes) >= 50 // FLUSH_AT
    finally:
        await client.aclose()
