"""The worker's scripts are loaded on every (re)connect, before anything else is sent on it."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bullpen.adapter import ActiveJob, JobOptions, QueueClient, QueueWorker, WorkerOptions
from bullpen.adapter.scripts import WORKER_SCRIPTS, port_script, script_commands
from tests.helpers.redis_server import PrivateRedis


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    private = PrivateRedis(tmp_path / "private-redis", persistent=False).start()
    yield private
    private.stop()


async def _done(server: PrivateRedis, job_id: str) -> None:
    deadline = time.monotonic() + 10
    while server.client.zscore("bull:loads:completed", job_id) is None:
        assert time.monotonic() < deadline, f"job {job_id} did not complete"
        await asyncio.sleep(0.02)


async def test_a_reconnected_worker_never_meets_noscript(server: PrivateRedis) -> None:
    # A restarted Redis has no scripts. The port found out from NOSCRIPT on each first call and
    # reloaded per caller, which let later writes overtake earlier ones. Loading every script
    # when a connection opens, before the commands queued for it, leaves nothing to retry.
    client = QueueClient(server.url, "loads")

    async def handler(job: ActiveJob) -> None:
        await job.log("ran")
        await job.update_progress(50)

    worker = QueueWorker(server.url, "loads", "bull", WorkerOptions(), handler)
    worker.start(on_error=lambda exc: None)
    try:
        await _done(server, await client.add("first", {}, JobOptions()))
        # Added now, due after the flush: from here on only the worker sends scripts.
        second = await client.add("second", {}, JobOptions(delay_ms=500))
        server.client.script_flush()
        server.client.client_kill_filter(_type="normal", skipme=True)  # the worker reconnects
        server.client.config_resetstat()
        await _done(server, second)
    finally:
        await worker.close(5)
        await client.close()
    assert "errorstat_NOSCRIPT" not in server.client.info("errorstats")
    assert int(server.client.info("commandstats")["cmdstat_script|load"]["calls"]) >= 9


def test_script_commands_are_every_command_the_worker_scripts_run() -> None:
    found = script_commands()
    assert {"zadd", "xadd", "rpoplpush", "hincrby", "pexpire", "lpos"} <= found
    assert all(name.islower() and name.isalpha() for name in found)
    for name in WORKER_SCRIPTS:  # each literal `rcall("X"` of the worker's scripts is listed
        body = port_script(name).body.decode()
        called = {match.lower() for match in re.findall(r'rcall\("([A-Za-z]+)"', body)}
        assert called <= found, (name, called - found)
