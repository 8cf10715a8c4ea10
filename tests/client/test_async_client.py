"""Client against a real Redis and a real `bullpen worker`: enqueue, wait, status, bulk, checks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
import redis.asyncio as aioredis

from bullpen import Client, JobFailed, JobSpec
from bullpen.client import waiter
from bullpen.client.job import STATE_LOOKUP_S
from bullpen.errors import (
    ClientError,
    JobDataError,
    JobIdError,
    JobNotFoundError,
    JobTimeoutError,
    TaskError,
    UnknownTaskError,
)
from bullpen.settings import Settings
from tests.helpers.processes import Proc, running_worker
from tests.helpers.redis_server import PrivateRedis


@pytest.fixture
def worker(app_env: dict[str, str]) -> Iterator[Proc]:
    with running_worker(app_env) as proc:
        yield proc
    assert "Traceback" not in proc.output, proc.output


@pytest.fixture
async def client(app_env: dict[str, str]) -> AsyncIterator[Client]:
    async with Client(poll_interval_s=0.5) as opened:
        yield opened


async def test_enqueue_then_wait_returns_the_tasks_result(client: Client, worker: Proc) -> None:
    job = await client.enqueue("test.record", {"n": 1})
    assert isinstance(job.id, str) and job.task == "test.record"
    assert await job.wait(timeout=15) == {"echo": {"n": 1}}
    assert await job.status() == "completed"
    info = await client.get_job(job.id)
    assert info is not None
    assert (info.task, info.state, info.data, info.result) == (
        "test.record", "completed", {"n": 1}, {"echo": {"n": 1}})
    assert info.finished and info.finished_at is not None and info.attempts_made == 1


async def test_a_failed_job_raises_job_failed_with_its_reason(client: Client,
                                                              worker: Proc) -> None:
    # Delayed, so the wait is in place before the job runs and the failure arrives as an event.
    job = await client.enqueue("test.give_up", delay_ms=300)
    with pytest.raises(JobFailed, match="bad input: will not retry") as caught:
        await job.wait(timeout=15)
    assert caught.value.job_id == job.id and caught.value.task == "test.give_up"
    assert caught.value.attempts_made == 1
    assert await job.status() == "failed"


async def test_a_retried_job_is_waited_for_until_its_last_attempt(client: Client,
                                                                 worker: Proc) -> None:
    job = await client.enqueue("test.flaky", {"succeed_on": 2}, attempts=2)
    assert await job.wait(timeout=15) == "ok"


async def test_wait_times_out_with_timeout_error_and_the_job_goes_on(client: Client) -> None:
    job = await client.enqueue("test.record", {}, delay_ms=60_000)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        await job.wait(timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.3 + 1.0
    assert isinstance(caught.value, JobTimeoutError) and "still delayed" in str(caught.value)
    assert await job.status() == "delayed"


async def test_a_job_finished_before_the_wait_began_is_seen(client: Client,
                                                           app_env: dict[str, str]) -> None:
    with running_worker(app_env):
        job = await client.enqueue("test.record", {"early": True})
        for _ in range(300):
            if await job.status() == "completed":
                break
            await asyncio.sleep(0.05)
    async with Client() as fresh:
        assert await fresh.job(job.id).wait(timeout=5) == {"echo": {"early": True}}


async def test_waiting_on_an_unknown_job_says_so(client: Client) -> None:
    with pytest.raises(JobNotFoundError, match="does not exist"):
        await client.job("no-such-job").wait(timeout=5)
    assert await client.job("no-such-job").status() == "unknown"
    assert await client.get_job("no-such-job") is None


def _connections_to(port: int) -> int:
    return sum(1 for conn in psutil.Process().net_connections("tcp")
               if conn.raddr and conn.raddr.port == port and conn.status == "ESTABLISHED")


async def test_many_waits_share_one_events_connection(client: Client, worker: Proc,
                                                      app_env: dict[str, str]) -> None:
    port = int(app_env["WORKER_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    jobs = await client.enqueue_many([("test.slow", {"sleep_s": 0.5}) for _ in range(40)])
    before = _connections_to(port)
    waits = [asyncio.create_task(job.wait(timeout=30)) for job in jobs]
    await asyncio.sleep(0.3)
    during = _connections_to(port)
    assert await asyncio.gather(*waits) == ["done"] * 40
    # Waiting adds the events reader and one connection for the checks, however many wait.
    assert during - before <= 2, f"{during - before} more connections for 40 concurrent waits"


async def test_a_lost_event_is_caught_by_the_poll(client: Client, worker: Proc,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # An event trimmed from the stream under load never reaches the reader.
    monkeypatch.setattr(waiter.JobWaiter, "_on_event", lambda self, fields: None)
    job = await client.enqueue("test.slow", {"sleep_s": 0.3})
    started = time.monotonic()
    assert await job.wait(timeout=10) == "done"
    assert time.monotonic() - started < 0.3 + 0.5 + 1.5  # run + one poll interval + margin


async def test_enqueue_many_is_one_transaction_with_per_job_options(tmp_path: Path,
                                                                     app_env: dict[str, str]
                                                                     ) -> None:
    server = PrivateRedis(tmp_path / "redis", persistent=False).start()
    try:
        async with Client(redis_url=server.url) as private:
            stats = aioredis.Redis.from_url(server.url, decode_responses=True)
            before = await stats.info("commandstats")
            jobs = await private.enqueue_many([
                JobSpec("test.record", {"i": 0}, job_id="bulk-0", priority=3),
                JobSpec("test.record", {"i": 1}, delay_ms=60_000),
                ("test.record", {"i": 2}),
            ])
            after = await stats.info("commandstats")
            await stats.aclose()
            calls = {name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"]
                     for name in ("cmdstat_multi", "cmdstat_exec")}
            assert calls == {"cmdstat_multi": 1, "cmdstat_exec": 1}
            assert jobs[0].id == "bulk-0"
            assert [await job.status() for job in jobs] == ["prioritized", "delayed", "waiting"]
    finally:
        server.stop()


async def test_bad_input_writes_nothing(client: Client, raw_redis: aioredis.Redis) -> None:
    with pytest.raises(UnknownTaskError, match=r"did you mean 'test\.record'"):
        await client.enqueue("test.recrd")
    with pytest.raises(JobDataError, match="not JSON-serialisable"):
        await client.enqueue("test.record", {"when": object()})
    with pytest.raises(JobDataError, match="over the limit"):
        await client.enqueue("test.record", {"blob": "x" * (client.settings.job_max_data_bytes)})
    for options, name in (({"attempts": 0}, "attempts"), ({"delay_ms": -1}, "delay_ms"),
                          ({"priority": 3_000_000}, "priority"), ({"job_id": ""}, "job_id")):
        with pytest.raises(JobDataError, match=name):
            await client.enqueue("test.record", {}, **options)
    with pytest.raises(UnknownTaskError):
        await client.enqueue_many([("test.record", {}), ("nope.task", {})])
    for bad_id in ("263", "a:b", "meta"):  # as Node BullMQ refuses them, in every way in
        with pytest.raises(JobIdError, match=repr(bad_id)):
            await client.enqueue("test.record", {}, job_id=bad_id)
        with pytest.raises(JobIdError, match=repr(bad_id)):
            await client.enqueue_many([JobSpec("test.record", {}),
                                       JobSpec("test.record", {}, job_id=bad_id)])
    # Nothing was added, not even the valid first job of the batch.
    assert await raw_redis.keys(f"bull:{client.queue_name}:*") == []


async def test_worker_defaults_apply_to_every_job(client: Client, raw_redis: aioredis.Redis,
                                                  app_env: dict[str, str]) -> None:
    job = await client.enqueue("test.record")
    opts = json.loads(await raw_redis.hget(f"bull:{client.queue_name}:{job.id}", "opts") or "{}")
    settings = Settings()
    assert opts["attempts"] == settings.worker_default_attempts
    assert opts["backoff"] == {"type": "exponential", "delay": settings.worker_backoff_delay_ms}
    assert opts["removeOnComplete"] == {"count": settings.worker_keep_completed}
    assert opts["removeOnFail"] == {"count": settings.worker_keep_failed}
    assert await raw_redis.hget(f"bull:{client.queue_name}:{job.id}", "data") == "{}"


async def test_task_check_is_skipped_when_the_app_is_not_importable(
        app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULLPEN_APP", "app_not_installed_here")
    async with Client() as web_side:
        job = await web_side.enqueue("orders.ship", {"order": 7})  # a worker elsewhere knows it
        assert await job.status() == "waiting"
    with pytest.raises(TaskError, match="app_not_installed_here"):
        await Client(check_tasks=True).open()


async def test_a_closed_client_refuses_and_another_loop_is_refused(app_env: dict[str, str]
                                                                   ) -> None:
    opened = await Client().open()
    await opened.close()
    with pytest.raises(ClientError, match="closed"):
        await opened.enqueue("test.record")
    other = await Client().open()
    try:
        error = await asyncio.to_thread(lambda: _try_other_loop(other))
        assert "belongs to the event loop" in error
    finally:
        await other.close()


def _try_other_loop(client: Client) -> str:
    try:
        asyncio.run(client.enqueue("test.record"))
    except ClientError as exc:
        return str(exc)
    return "no error"


async def test_a_wait_keeps_its_timeout_when_redis_is_gone(tmp_path: Path,
                                                           app_env: dict[str, str]) -> None:
    server = PrivateRedis(tmp_path / "redis", persistent=False).start()
    async with Client(redis_url=server.url) as private:
        job = await private.enqueue("test.record")
        server.stop()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await job.wait(timeout=1)
        # The timeout, then at most the quick state lookup for the message.
        assert time.monotonic() - started < 1 + STATE_LOOKUP_S + 1.0
