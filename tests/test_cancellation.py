"""Cancelling a running job from another process (this test's), against real workers: what
each kind of handler sees, how the job ends, and the shutdown notice."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bullpen import Client, JobFailedError
from bullpen.cancellation import RECONNECT_DELAY_S
from bullpen.runtime.served_queue import shutdown_notice_s
from tests.helpers import APPS_DIR, REPO
from tests.helpers.processes import running_worker, start_worker
from tests.helpers.redis_server import PrivateRedis

# Bound on the time from a cancel request to the handler seeing it: pub/sub delivery plus the
# tasks' 20 ms poll, with room for a loaded machine.
SEEN_WITHIN_MS = 1000


@pytest.fixture
def cancel_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"BULLPEN_APP": "observed_app", "PYTHONPATH": f"{APPS_DIR}:{REPO}"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(APPS_DIR))
    return {**env, **values}


async def _seen(redis: aioredis.Redis, queue: str, job_id: str, event: str,
                timeout_s: float = 15) -> dict[str, Any]:
    """The note the task made for `event`, once it is there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for raw in await redis.lrange(f"bull:{queue}:test:seen", 0, -1):
            note = json.loads(raw)
            if note["job_id"] == job_id and note["event"] == event:
                return dict(note)
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id}: no {event!r} note")


async def _cancelled(client: Client, job_id: str, reason: str = "cancelled") -> None:
    with pytest.raises(JobFailedError) as failure:
        await client.job(job_id).wait(timeout=15)
    assert failure.value.reason == reason
    info = await client.get_job(job_id)
    assert info is not None and info.state == "failed"
    assert info.attempts_made == 1 and info.attempts_allowed == 3  # never retried
    assert info.result is None


async def test_a_def_handler_polling_ctx_cancelled_stops_and_its_job_fails_as_cancelled(
        cancel_env: dict[str, str], queue_name: str, raw_redis: aioredis.Redis) -> None:
    with running_worker(cancel_env) as worker:
        async with Client() as client:
            job = await client.enqueue("cancel.poll", attempts=3)
            await _seen(raw_redis, queue_name, job.id, "start")
            asked_ms = time.time() * 1000
            assert await job.cancel() is True
            stop = await _seen(raw_redis, queue_name, job.id, "stop")
            await _cancelled(client, job.id)
            assert await job.cancel() is False  # no longer running
    assert stop["cancelled"] is True and stop["reason"] == "cancelled"
    assert stop["at_ms"] - asked_ms <= SEEN_WITHIN_MS
    assert f"Job {job.id} of type cancel.poll stopped (attempt 1): cancelled" in worker.output
    assert "Traceback" not in worker.output


async def test_an_async_handler_is_cancelled_where_it_awaits(
        cancel_env: dict[str, str], queue_name: str, raw_redis: aioredis.Redis) -> None:
    with running_worker(cancel_env):
        async with Client() as client:
            job = await client.enqueue("cancel.wait_async", attempts=3)
            await _seen(raw_redis, queue_name, job.id, "start")
            asked_ms = time.time() * 1000
            assert await client.cancel(job.id, "user asked") is True
            note = await _seen(raw_redis, queue_name, job.id, "cancelled")
            await _cancelled(client, job.id, "cancelled: user asked")
    assert note["reason"] == "cancelled: user asked"
    assert note["at_ms"] - asked_ms <= SEEN_WITHIN_MS


async def test_a_handler_ignoring_the_request_runs_on_but_its_result_is_not_a_success(
        cancel_env: dict[str, str], queue_name: str, raw_redis: aioredis.Redis) -> None:
    with running_worker(cancel_env) as worker:
        async with Client() as client:
            job = await client.enqueue("cancel.ignore", {"sleep_s": 1.5}, attempts=3)
            start = await _seen(raw_redis, queue_name, job.id, "start")
            assert await job.cancel() is True
            await asyncio.sleep(0.3)
            assert await job.status() == "active"  # not killed: it holds its lock and runs on
            end = await _seen(raw_redis, queue_name, job.id, "end")
            await _cancelled(client, job.id)
    assert end["cancelled"] is True and end["at_ms"] - start["at_ms"] >= 1500
    assert worker.popen.poll() is None or worker.popen.returncode == 0


async def test_an_isolated_handler_sees_the_request_in_its_own_process(
        cancel_env: dict[str, str], queue_name: str, raw_redis: aioredis.Redis) -> None:
    with running_worker(cancel_env) as worker:
        async with Client() as client:
            job = await client.enqueue("cancel.isolated_poll", attempts=3)
            start = await _seen(raw_redis, queue_name, job.id, "start", timeout_s=30)
            assert await job.cancel() is True
            stop = await _seen(raw_redis, queue_name, job.id, "stop")
            await _cancelled(client, job.id)
    assert start["pid"] != worker.popen.pid and stop["cancelled"] is True


async def test_only_a_running_job_can_be_cancelled(cancel_env: dict[str, str]) -> None:
    async with Client() as client:
        waiting = await client.enqueue("cancel.poll")
        assert await waiting.cancel() is False
        assert await client.cancel("no-such-job") is False
        assert await client.cancel("meta") is False  # the queue's own key, not a job
        assert await waiting.status() == "waiting"


@pytest.mark.timeout(60)
async def test_at_shutdown_handlers_get_the_signal_shortly_before_the_timeout(
        cancel_env: dict[str, str], queue_name: str, raw_redis: aioredis.Redis) -> None:
    timeout_s = 2.5
    env = {**cancel_env, "WORKER_SHUTDOWN_TIMEOUT_S": str(timeout_s)}
    notice_at_ms = (timeout_s - shutdown_notice_s(timeout_s)) * 1000
    worker = start_worker(env)
    try:
        async with Client() as client:
            saver = await client.enqueue("cancel.save_at_shutdown", attempts=3)
            poller = await client.enqueue("cancel.poll", {"save": True}, attempts=3)
            for job in (saver, poller):
                await _seen(raw_redis, queue_name, job.id, "start")
            term_ms = time.time() * 1000
            worker.signal(signal.SIGTERM)
            told = await _seen(raw_redis, queue_name, saver.id, "told")
            stop = await _seen(raw_redis, queue_name, poller.id, "stop")
            assert worker.wait() == 0
            exit_ms = time.time() * 1000
            infos = [await client.get_job(job.id) for job in (saver, poller)]
    finally:
        worker.kill()
    for note in (told, stop):
        assert notice_at_ms - 50 <= note["at_ms"] - term_ms <= notice_at_ms + SEEN_WITHIN_MS
    assert told["reason"] == stop["reason"] == (
        "the worker is shutting down: the job goes back to waiting")
    # Both stopped at the signal: back to waiting, progress saved, no attempt counted.
    assert [(info.state, info.attempts_made) for info in infos if info] == [("waiting", 0)] * 2
    assert [info.progress for info in infos if info] == [{"saved": True},
                                                         {"saved_steps": stop["steps"]}]
    assert exit_ms - term_ms <= timeout_s * 1000 + 1500
    assert "Shutdown timeout reached" not in worker.output and "Traceback" not in worker.output


@pytest.mark.timeout(60)
async def test_a_request_sent_while_the_worker_was_not_subscribed_still_counts(
        cancel_env: dict[str, str], queue_name: str, tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path / "redis").start()
    env = {**cancel_env, "WORKER_REDIS_URL": server.url}
    admin = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        with running_worker(env):
            async with Client(redis_url=server.url) as client:
                job = await client.enqueue("cancel.poll", attempts=3)
                await _seen(admin, queue_name, job.id, "start")
                # Drop the worker's subscription; the request goes out before it is back.
                killed = await admin.execute_command(  # type: ignore[no-untyped-call]
                    "CLIENT", "KILL", "TYPE", "pubsub")
                assert killed >= 1
                asked_ms = time.time() * 1000
                assert await job.cancel() is True
                stop = await _seen(admin, queue_name, job.id, "stop")
                await _cancelled(client, job.id)
        assert stop["at_ms"] - asked_ms <= RECONNECT_DELAY_S * 1000 + SEEN_WITHIN_MS
    finally:
        await admin.aclose()
        server.stop()
