"""A running job's log lines and progress: in call order, on the worker's command connection.

Counts come from a private redis-server (INFO errorstats, CLIENT LIST), so nothing else
shares what is counted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bullpen.adapter import ActiveJob, JobOptions, QueueClient, QueueWorker, WorkerOptions
from tests.helpers.redis_server import PrivateRedis


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    private = PrivateRedis(tmp_path / "private-redis", persistent=False).start()
    yield private
    private.stop()


async def _run_one_job(server: PrivateRedis, queue: str, handler: Any) -> str:
    """Enqueue one job, run it on a worker, return its id once completed."""
    client = QueueClient(server.url, queue)
    job_id = await client.add("write", {}, JobOptions())
    await client.close()  # from here on only the worker and `server.client` are connected
    worker = QueueWorker(server.url, queue, "bull", WorkerOptions(concurrency=2), handler)
    worker.start(on_error=lambda exc: None)
    try:
        deadline = time.monotonic() + 15
        while server.client.zscore(f"bull:{queue}:completed", job_id) is None:
            assert time.monotonic() < deadline, "the job did not complete"
            await asyncio.sleep(0.05)
        return job_id
    finally:
        await worker.close(5)


async def test_logs_and_progress_keep_call_order_across_a_script_flush(
        server: PrivateRedis) -> None:
    # After SCRIPT FLUSH every write meets NOSCRIPT; one retried after the reload was overtaken
    # by later ones (logs 1,4,5,…,2,3; final progress 4 of 39). Each job has one ordered lane.
    admin = redis.Redis(port=server.port)
    lines = 40

    async def handler(job: ActiveJob) -> None:
        writes = []
        for n in range(lines):
            if n == 10:
                admin.script_flush()
            writes.append(asyncio.ensure_future(job.log(f"line {n}")))
            writes.append(asyncio.ensure_future(job.update_progress(n)))
            await asyncio.sleep(0)
        await asyncio.gather(*writes)

    job_id = await _run_one_job(server, "ordered", handler)
    sync: Any = server.client
    assert sync.lrange(f"bull:ordered:{job_id}:logs", 0, -1) == [f"line {n}" for n in range(lines)]
    assert json.loads(sync.hget(f"bull:ordered:{job_id}", "progress")) == lines - 1
    events = sync.xrange("bull:ordered:events")
    progress = [int(fields["data"]) for _id, fields in events if fields["event"] == "progress"]
    assert progress == list(range(lines))
    assert int(sync.info("errorstats")["errorstat_NOSCRIPT"]["count"]) > 0  # the flush did bite
    admin.close()


async def test_logs_go_through_addlog_on_the_command_connection(server: PrivateRedis) -> None:
    # The port wrote logs with MULTI/RPUSH/EXEC on extra pool connections, all named like a
    # worker (listed several times by BullMQ tools); Node uses addLog on its main connection.
    seen: list[list[dict[str, Any]]] = []

    async def handler(job: ActiveJob) -> None:
        await asyncio.gather(*(job.log(f"line {n}") for n in range(20)))
        seen.append(server.client.client_list())

    server.client.config_resetstat()
    job_id = await _run_one_job(server, "logged", handler)
    assert len(server.client.lrange(f"bull:logged:{job_id}:logs", 0, -1)) == 20
    stats = server.client.info("commandstats")
    assert "cmdstat_multi" not in stats and "cmdstat_rpush" in stats  # RPUSH inside addLog
    others = [client for client in seen[0] if client["cmd"] != "client|list"]
    assert len(others) == 2, others  # the command connection and the blocking one
    named = [client["name"] for client in others if client["name"]]
    assert len(named) == 1 and named[0].startswith("bull:bG9nZ2Vk:w:"), others
