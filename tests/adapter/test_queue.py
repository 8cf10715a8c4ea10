"""QueueClient's durable enqueue on a server without replicas: WAIT finds none, the caller
hears it, and the job was added anyway (the master has it); a WAIT whose connection was lost
confirms nothing."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bullpen import Client
from bullpen.adapter import JobOptions, QueueClient
from bullpen.errors import ReplicationError
from tests.helpers.processes import eventually
from tests.helpers.redis_server import PrivateRedis


async def test_fewer_replicas_than_asked_is_an_error_naming_the_job(
        env: dict[str, str], queue_name: str) -> None:
    client = QueueClient(env["WORKER_REDIS_URL"], queue_name, enqueue_wait=(1, 50))
    try:
        with pytest.raises(ReplicationError) as caught:
            await client.add("some.task", {}, JobOptions(job_id="durable-1"))
        message = str(caught.value)
        assert "job durable-1 (some.task) was added on the Redis master" in message
        assert "only 0 of 1 replicas acknowledged it within 50 ms" in message
        assert await client.get_job("durable-1") is not None
        with pytest.raises(ReplicationError, match=r"jobs durable-2, durable-3 were added"):
            await client.add_bulk([("some.task", {}, JobOptions(job_id=f"durable-{n}"))
                                   for n in (2, 3)])
        assert await client.get_job("durable-3") is not None
    finally:
        await client.close()


async def test_no_wait_unless_asked(env: dict[str, str], queue_name: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async with Client(check_tasks=False) as client:
        await client.enqueue("some.task", {})  # 0 replicas on the test server: no WAIT, no error
    monkeypatch.setenv("JOB_ENQUEUE_WAIT_REPLICAS", "1")
    monkeypatch.setenv("JOB_ENQUEUE_WAIT_TIMEOUT_MS", "20")
    async with Client(check_tasks=False) as client:
        with pytest.raises(ReplicationError):
            await client.enqueue("some.task", {})
        with pytest.raises(ReplicationError):
            await client.enqueue_many([("some.task", {}), ("some.task", {})])


async def test_a_wait_cut_short_by_a_lost_connection_confirms_nothing(
        env: dict[str, str], queue_name: str, raw_redis: aioredis.Redis) -> None:
    """Retried on a new connection, WAIT would count replicas for no write: refused instead."""
    client = QueueClient(env["WORKER_REDIS_URL"], queue_name, enqueue_wait=(1, 1500))
    try:
        connection_id = await client.redis.client_id()

        async def kill_the_connection() -> None:
            await asyncio.sleep(0.3)  # the job is added; WAIT is waiting for a replica
            await raw_redis.client_kill_filter(_id=str(connection_id))

        killer = asyncio.create_task(kill_the_connection())
        with pytest.raises(ReplicationError, match="connection was lost before any replica"):
            await client.add("some.task", {}, JobOptions(job_id="durable-cut"))
        await killer
        assert await client.get_job("durable-cut") is not None
    finally:
        await client.close()


@pytest.fixture
def stalled_replica(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A master whose one replica synced, then stopped (SIGSTOP): it acknowledges nothing more."""
    master = PrivateRedis(tmp_path / "master", persistent=False,
                          options=("--repl-diskless-sync-delay", "0")).start()
    replica = PrivateRedis(tmp_path / "replica", persistent=False,
                           options=("--replicaof", "127.0.0.1", str(master.port))).start()
    try:
        eventually(lambda: replica.client.info("replication")["master_link_status"] == "up")
        assert replica.process is not None
        replica.process.send_signal(signal.SIGSTOP)
        yield master
    finally:
        if replica.process is not None:
            replica.process.send_signal(signal.SIGCONT)
        replica.stop()
        master.stop()


@pytest.mark.parametrize("bulk", [False, True])
async def test_a_replica_that_acknowledges_nothing_fails_the_wait(
        stalled_replica: PrivateRedis, bulk: bool) -> None:
    """The bulk add's MULTI runs on a pooled connection of its own, and WAIT counts what the
    server had processed at its connection's previous command: it must still cover the MULTI."""
    client = QueueClient(stalled_replica.url, "durable", enqueue_wait=(1, 200))
    try:
        assert await client.ping()  # the WAIT connection's previous command: before the add
        with pytest.raises(ReplicationError, match="only 0 of 1 replicas"):
            if bulk:
                await client.add_bulk([("some.task", {}, JobOptions()) for _ in range(3)])
            else:
                await client.add("some.task", {}, JobOptions())
    finally:
        await client.close()


@pytest.mark.parametrize("opts", ['["attempts", 3]', '"attempts"', "7"])
async def test_a_job_whose_options_are_not_an_object_is_shown_not_raised(
        client: QueueClient, raw_redis: Any, queue_name: str, opts: str) -> None:
    """Another producer may store any JSON as a job's opts; the dashboard still shows the job."""
    job_id = await client.add("odd", {"x": 1}, JobOptions())
    await raw_redis.hset(f"bull:{queue_name}:{job_id}", "opts", opts)
    record = await client.get_job(job_id)
    assert record is not None and (record.id, record.name, record.state) == (job_id, "odd",
                                                                               "waiting")
    assert record.data == ("(stored data cannot be decoded: its opts are not a JSON object; its "
                           'first 2000 characters) {"x":1}')
    assert [listed.id for listed in await client.get_jobs("waiting")] == [job_id]
