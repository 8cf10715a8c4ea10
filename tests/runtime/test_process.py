"""`bullpen worker` as a real process: start-up lines, dispatch, retries, crashes, signals."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from pathlib import Path

import pytest

from bullpen.adapter import JobOptions, QueueClient
from bullpen.runtime import heartbeat
from bullpen.runtime.stats import read_stats
from tests.helpers.processes import Proc, recorded_runs, run_cli, running_worker, start_worker
from tests.helpers.redis_server import PrivateRedis


async def _wait_state(client: QueueClient, job_id: str, state: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        record = await client.get_job(job_id)
        if record is not None and record.state == state:
            return
        assert time.monotonic() < deadline, (
            f"job {job_id} is {record and record.state}: {record and record.failed_reason}")
        await asyncio.sleep(0.05)


async def test_start_up_logs_the_specified_lines_and_processes_health_check(
        env: dict[str, str], client: QueueClient) -> None:
    worker = start_worker(env)
    try:
        worker.wait_for("[worker] Scheduled job registered: cleanup-exports-hourly (0 * * * *)")
        enqueued = run_cli(["enqueue", "health.check"], env)
        assert enqueued.returncode == 0, enqueued.stderr
        job_id = enqueued.stdout.strip()
        await _wait_state(client, job_id, "completed")
        worker.wait_for(f"[worker] Processing job {job_id} of type health.check")
        record = await client.get_job(job_id)
        assert record is not None and record.return_value["redis_latency_ms"] >= 0
        assert record.return_value["export_dir_writable"] is True
    finally:
        worker.signal()
        assert worker.wait() == 0
    lines = worker.output
    order = ["Worker started and ready to process jobs from queue: " + env["WORKER_DEFAULT_QUEUE"],
             "[worker] Initializing scheduled jobs...",
             "[worker] Scheduled job registered: cleanup-exports-hourly (0 * * * *)"]
    positions = [lines.index(text) for text in order]
    assert positions == sorted(positions)


async def test_unknown_task_fails_that_job_logged_and_counted_and_the_worker_carries_on(
        app_env: dict[str, str], client: QueueClient) -> None:
    with running_worker(app_env) as worker:
        bad = await client.add("no.such.task", {}, JobOptions(attempts=1))
        good = await client.add("test.record", {"n": 1}, JobOptions())
        await _wait_state(client, bad, "failed")
        await _wait_state(client, good, "completed")
        record = await client.get_job(bad)
        assert record is not None and record.failed_reason is not None
        assert record.failed_reason.startswith(
            "no handler registered for task 'no.such.task' (known: exports.cleanup")
        assert "check the spelling. New tasks go in" in record.failed_reason
        worker.wait_for(f"Job {bad} of type no.such.task failed (attempt 1 of 1): no handler "
                        "registered for task 'no.such.task'")
        deadline = time.monotonic() + 5  # counters reach Redis with the next heartbeat
        while (await read_stats(client)).get("no.such.task", {}).get("failed") != 1:
            assert time.monotonic() < deadline, await read_stats(client)
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("extra", [(), ("--processes", "2")], ids=["one", "processes"])
async def test_sigterm_flushes_the_last_counts_and_removes_the_heartbeat(
        app_env: dict[str, str], client: QueueClient, extra: tuple[str, ...]) -> None:
    # Beats (and the flushes riding on them) 60 s apart: within this test only the shutdown
    # farewell can write the counts and take the heartbeat away; its TTL would keep it 180 s.
    env = {**app_env, "WORKER_HEARTBEAT_INTERVAL_S": "60"}
    size = 2 if extra else 1
    worker = start_worker(env, *extra)
    try:
        deadline = time.monotonic() + 10
        while len(alive := await heartbeat.alive_workers(client)) < size:
            assert time.monotonic() < deadline, alive
            await asyncio.sleep(0.05)
        ids = [await client.add("test.record", {"n": n}, JobOptions()) for n in range(4)]
        for job_id in ids:
            await _wait_state(client, job_id, "completed")
        assert "test.record" not in await read_stats(client)
        worker.signal(signal.SIGTERM)
        # Nothing to drain: the exit bound is the farewells' (2 s each), well inside this.
        assert worker.wait(timeout=10) == 0
    finally:
        worker.kill()
    assert (await read_stats(client))["test.record"]["processed"] == 4
    assert await heartbeat.alive_workers(client) == []
    assert await client.redis.exists(*(client.keys.worker(info.id) for info in alive)) == 0
    assert "Traceback" not in worker.output


async def test_sync_and_async_handlers_both_run_and_write_job_logs(
        app_env: dict[str, str], client: QueueClient) -> None:
    with running_worker(app_env):
        sync_id = await client.add("test.record_sync", {"x": "é"}, JobOptions())
        async_id = await client.add("test.record", {"x": [1, {"y": 2}]}, JobOptions())
        await _wait_state(client, sync_id, "completed")
        await _wait_state(client, async_id, "completed")
        sync_job, async_job = await client.get_job(sync_id), await client.get_job(async_id)
        assert sync_job and sync_job.return_value == {"thread": True, "data": {"x": "é"}}
        assert async_job and async_job.return_value == {"echo": {"x": [1, {"y": 2}]}}
        assert await client.get_logs(sync_id) == ["sync handler ran"]
        assert await client.get_logs(async_id) == [f"recorded {async_id}"]


async def test_retries_back_off_exponentially_and_unrecoverable_errors_stop_at_once(
        app_env: dict[str, str], client: QueueClient) -> None:
    with running_worker(app_env):
        flaky = await client.add("test.flaky", {"succeed_on": 3},
                                 JobOptions(attempts=3, backoff_delay_ms=200))
        give_up = await client.add("test.give_up", {}, JobOptions(attempts=3))
        await _wait_state(client, flaky, "completed")
        await _wait_state(client, give_up, "failed")
        starts = [run["at_ms"] for run in recorded_runs(app_env["WORKER_DEFAULT_QUEUE"])
                  if run["job_id"] == flaky]
        gaps = [b - a for a, b in itertools.pairwise(starts)]  # type: ignore[operator]
        assert len(starts) == 3
        assert 190 <= gaps[0] < 400 and 390 <= gaps[1] < 700, gaps
        record = await client.get_job(give_up)
        assert record is not None and record.attempts_made == 1
        assert record.failed_reason == "bad input: will not retry"


async def test_a_manual_retry_of_an_exhausted_job_is_its_last_attempt_and_says_so(
        app_env: dict[str, str], client: QueueClient) -> None:
    with running_worker(app_env) as worker:
        job_id = await client.add("test.flaky", {}, JobOptions(attempts=2, backoff_delay_ms=50))
        await _wait_state(client, job_id, "failed")
        worker.wait_for(f"Job {job_id} of type test.flaky failed (attempt 2 of 2)")
        await client.retry_job(job_id)
        worker.wait_for(f"Job {job_id} of type test.flaky failed (attempt 3 of 3)")
        await _wait_state(client, job_id, "failed")
    assert "attempt 3 of 2" not in worker.output


async def test_a_blocking_def_handler_longer_than_the_lock_runs_once(
        app_env: dict[str, str], client: QueueClient) -> None:
    with running_worker(app_env) as worker:
        job_id = await client.add("test.record_sync", {"block_s": 4.5, "cpu": True},
                                  JobOptions(attempts=1))
        await _wait_state(client, job_id, "completed", timeout_s=20)
        runs = [r for r in recorded_runs(app_env["WORKER_DEFAULT_QUEUE"]) if r["job_id"] == job_id]
        assert len(runs) == 1
        assert "stalled" not in worker.output


async def test_the_job_of_a_killed_worker_is_completed_by_another(
        app_env: dict[str, str], client: QueueClient) -> None:
    first = start_worker(app_env)
    job_id = await client.add("test.slow", {"sleep_s": 2}, JobOptions(attempts=1))
    first.wait_for(f"Processing job {job_id}")
    first.kill()
    with running_worker(app_env):
        await _wait_state(client, job_id, "completed", timeout_s=20)
    events = [r.get("event") for r in recorded_runs(app_env["WORKER_DEFAULT_QUEUE"])]
    assert events.count("start") == 2 and events.count("end") == 1


async def test_sigterm_lets_active_jobs_finish_then_exits_zero(
        app_env: dict[str, str], client: QueueClient) -> None:
    worker = start_worker(app_env)
    job_id = await client.add("test.slow", {"sleep_s": 1.5}, JobOptions(attempts=1))
    worker.wait_for(f"Processing job {job_id}")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    record = await client.get_job(job_id)
    assert record is not None and record.state == "completed"


async def test_jobs_running_past_the_shutdown_timeout_are_recovered_not_lost(
        app_env: dict[str, str], client: QueueClient) -> None:
    env = {**app_env, "WORKER_SHUTDOWN_TIMEOUT_S": "0.5"}
    worker = start_worker(env)
    job_id = await client.add("test.slow", {"sleep_s": 3}, JobOptions(attempts=1))
    worker.wait_for(f"Processing job {job_id}")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert "Shutdown timeout reached" in worker.output
    record = await client.get_job(job_id)
    assert record is not None and record.state == "active"
    with running_worker(env):
        await _wait_state(client, job_id, "completed", timeout_s=20)


@pytest.mark.timeout(60)
async def test_redis_unreachable_at_start_is_retried_without_crashing(env: dict[str, str]) -> None:

    worker = Proc(["worker"], {**env, "WORKER_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"})
    worker.wait_for("is unreachable")
    worker.wait_for("retrying in 1.0 s")
    assert worker.popen.poll() is None
    worker.signal()
    assert worker.wait() == 0
    assert "hunter2" not in worker.output


async def test_a_redis_restart_mid_run_loses_no_job(app_env: dict[str, str], tmp_path: object,
                                                    queue_name: str) -> None:


    server = PrivateRedis(Path(str(tmp_path)) / "redis").start()
    env = {**app_env, "WORKER_REDIS_URL": server.url}
    client = QueueClient(server.url, queue_name)
    with running_worker(env) as worker:
        before = [await client.add("test.record", {"i": i}, JobOptions()) for i in range(10)]
        delayed = [await client.add("test.record", {"d": i}, JobOptions(delay_ms=3000))
                   for i in range(5)]
        for job_id in before:
            await _wait_state(client, job_id, "completed")
        server.stop()
        await asyncio.sleep(2)
        server.start()
        after = [await client.add("test.record", {"j": i}, JobOptions()) for i in range(10)]
        for job_id in [*delayed, *after]:
            await _wait_state(client, job_id, "completed", timeout_s=40)
        counts = await client.get_counts()
        assert counts["completed"] == 25 and counts["failed"] == 0
        worker.wait_for(f"Lost Redis at {server.url}")
        worker.wait_for("answers again; carrying on")
        await client.close()
        server.stop()


@pytest.mark.timeout(90)
async def test_three_workers_run_each_tick_of_a_one_second_schedule_once(
        app_env: dict[str, str]) -> None:

    env = {**app_env,
           "SAMPLE_SCHEDULES": '[{"name": "tick", "task_name": "test.record", '
                               '"pattern": "* * * * * *"}]'}
    workers = [Proc(["worker"], env) for _ in range(3)]
    try:
        for worker in workers:
            worker.wait_for("Schedules reconciled")
        await asyncio.sleep(23)
    finally:
        for worker in workers:
            worker.signal()
        for worker in workers:
            worker.wait()
    runs = [r for r in recorded_runs(env["WORKER_DEFAULT_QUEUE"]) if r["scheduler"] == "tick"]
    ticks = [int(str(r["job_id"]).rsplit(":", 1)[1]) for r in runs]
    assert len(ticks) == len(set(ticks)), "a tick ran twice"
    assert len(ticks) >= 20
    gaps = {b - a for a, b in zip(sorted(ticks), sorted(ticks)[1:], strict=False)}
    assert gaps == {1000}, f"missed ticks: gaps {sorted(gaps)}"
    summaries = sorted(w.wait_for("Schedules reconciled").split("reconciled: ")[1] for w in workers)
    assert summaries == ["0 added, 0 updated, 0 removed, 2 unchanged, 0 foreign"] * 2 + [
        "2 added, 0 updated, 0 removed, 0 unchanged, 0 foreign"]
    assert len({r["worker"] for r in runs}) >= 2


def test_worker_refuses_a_placeholder_secret_and_development_mode_generates_one(
        env: dict[str, str]) -> None:
    refused = run_cli(["worker"], {**env, "EXPORT_TOKEN_SECRET": "your-secret-here"}, timeout=20)
    assert refused.returncode == 2
    assert "EXPORT_TOKEN_SECRET" in refused.stderr and "placeholder" in refused.stderr
    worker = start_worker({**env, "EXPORT_TOKEN_SECRET": "", "BULLPEN_ENV": "development"})
    try:
        worker.wait_for("DEVELOPMENT MODE")
    finally:
        worker.signal()
        assert worker.wait() == 0


async def test_the_default_rate_limit_spreads_jobs_over_its_windows_without_stalls(
        app_env: dict[str, str], client: QueueClient) -> None:
    # WORKER_LIMITER_MAX=10 per 1000 ms is on by default. A limited worker waits for the rest
    # of the window (Node's limitUntil), not the port's 5 s drain delay.
    env = {**app_env, "WORKER_LIMITER_MAX": "10", "WORKER_LIMITER_DURATION": "1000"}
    ids = [await client.add("test.record", {"n": n}, JobOptions()) for n in range(30)]
    with running_worker(env):
        for job_id in ids:
            await _wait_state(client, job_id, "completed", timeout_s=10)
    starts = sorted(float(str(run["at_ms"])) for run in
                    recorded_runs(env["WORKER_DEFAULT_QUEUE"]) if run["job_id"] in ids)
    assert len(starts) == 30
    span_s = (starts[-1] - starts[0]) / 1000
    # 30 jobs at 10 per fixed window start in 3 windows: at least 2 window lengths apart,
    # and with no stall, within 3 windows of the first.
    assert 2 * 0.95 <= span_s <= 3, span_s
