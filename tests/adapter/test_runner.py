"""Running jobs to their end: undecodable jobs, refused finishes, deferred failures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from bullpen.adapter import ActiveJob, JobOptions, QueueClient, QueueWorker, WorkerOptions
from bullpen.errors import LockLostError


async def _until(check: Callable[[], Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_job_whose_data_cannot_be_decoded_fails_at_once_with_the_reason(
        redis_url: str, queue_name: str, client: QueueClient,
        raw_redis: Any) -> None:
    # Written by another producer: ~1000 levels of nesting (Python's JSON decoder stops at its
    # recursion limit) and telemetry in the options. The port left such a job `active` forever.
    bad = await client.add("deep", {}, JobOptions(attempts=3))
    good = await client.add("fine", {"n": 1}, JobOptions(attempts=3))
    key = f"bull:{queue_name}:{bad}"
    opts = json.loads(await raw_redis.hget(key, "opts"))
    tm = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
    await raw_redis.hset(key, mapping={"data": "[" * 1000 + "]" * 1000,
                                       "opts": json.dumps(opts | {"tm": tm})})
    await raw_redis.hset(f"bull:{queue_name}:{good}", "opts",
                         json.dumps(opts | {"tm": tm}))
    seen: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    async def handler(job: ActiveJob) -> None:
        seen.append(job.record.raw_opts)

    worker = QueueWorker(redis_url, queue_name, "bull", WorkerOptions(concurrency=1), handler)
    worker.start(on_error=errors.append)
    try:
        await _until(lambda: _state_is(client, good, "completed"), 10, "the good job")
        await _until(lambda: raw_redis.zscore(f"bull:{queue_name}:failed", bad), 10,
                     "the bad job to fail")
    finally:
        await worker.close(5)
    # Read raw: the port's Job.fromJSON cannot decode this data either.
    failed = await raw_redis.hgetall(key)
    assert failed["atm"] == "1"  # no retry: it cannot succeed
    assert failed["failedReason"] == (
        f"job {bad}: its data cannot be decoded as JSON (it is nested too deeply); it was "
        "written by a producer bullpen cannot read: fix the producer and enqueue the job again")
    assert [type(error).__name__ for error in errors] == ["JobDecodeError"]
    assert seen == [opts | {"tm": tm}]  # the handler saw the raw options, telemetry included


async def _state_is(client: QueueClient, job_id: str, state: str) -> bool:
    record = await client.get_job(job_id)
    return record is not None and record.state == state


async def test_a_finish_refused_for_a_lost_lock_reaches_on_error_with_one_argument(
        redis_url: str, queue_name: str, client: QueueClient,
        raw_redis: Any) -> None:
    # The port called its error listeners with (error, job); a one-argument callback then
    # raised TypeError and the real error was lost.
    runs: list[str] = []
    errors: list[BaseException] = []

    async def handler(job: ActiveJob) -> str:
        runs.append(job.id)
        await raw_redis.delete(f"bull:{queue_name}:{job.id}:lock")  # as if it had expired
        return "done"

    job_id = await client.add("lost", {}, JobOptions())
    worker = QueueWorker(redis_url, queue_name, "bull", WorkerOptions(), handler)
    worker.start(on_error=errors.append)
    try:
        await _until(lambda: _true(bool(errors)), 10, "the refusal")
    finally:
        await worker.close(5)
    assert [str(error) for error in errors] == [f"Missing lock for job {job_id}. moveToFinished"]
    assert isinstance(errors[0], LockLostError)
    assert runs == [job_id] and await _state_is(client, job_id, "active")


async def _true(value: bool) -> bool:
    return value


async def test_a_job_stalled_more_than_allowed_fails_without_running_again(
        redis_url: str, queue_name: str, client: QueueClient) -> None:
    # Two workers in turn abandon the job (like a kill: no lock renewal, no finish); the
    # stalled check then marks it (`defa`) and the next worker fails it without running it.
    options = WorkerOptions(lock_duration_ms=600, stalled_interval_ms=600, max_stalled_count=1)
    started: list[str] = []

    async def hang(job: ActiveJob) -> None:
        started.append(job.id)
        await asyncio.Event().wait()

    job_id = await client.add("stalls", {}, JobOptions(attempts=5))
    for expected_runs in (1, 2):
        worker = QueueWorker(redis_url, queue_name, "bull", options, hang)
        worker.start(on_error=lambda error: None)
        await _until(lambda: _true(len(started) == expected_runs), 10, "the job to start")  # noqa: B023
        assert not await worker.close(0)  # abandoned
    calls: list[str] = []

    async def record(job: ActiveJob) -> None:
        calls.append(job.id)

    last = QueueWorker(redis_url, queue_name, "bull", options, record)
    last.start(on_error=lambda error: None)
    try:
        await _until(lambda: _state_is(client, job_id, "failed"), 10, "the deferred failure")
    finally:
        await last.close(5)
    failed = await client.get_job(job_id)
    assert failed is not None and failed.failed_reason == "job stalled more than allowable limit"
    assert calls == [] and started == [job_id, job_id]
