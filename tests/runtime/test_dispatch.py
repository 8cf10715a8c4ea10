"""The dispatcher in-process on a real queue worker: results, failures, retries, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bullpen import logs
from bullpen.adapter import JobOptions, JobRecord, QueueClient, QueueWorker
from bullpen.cancellation import CancelRequest
from bullpen.definitions.task import Registry
from bullpen.errors import JobCancelledError, UnrecoverableJobError
from bullpen.runtime.context import JobContext
from bullpen.runtime.dispatch import Dispatcher
from bullpen.runtime.served_queue import worker_options
from bullpen.settings import Settings

STARTED: dict[str, asyncio.Event] = {}


async def _double(data: dict[str, Any]) -> int:
    return int(data["n"]) * 2


def _thread_name(data: dict[str, Any], ctx: JobContext) -> str:
    ctx.log(f"in {threading.current_thread().name}")
    return threading.current_thread().name


async def _refuse(data: dict[str, Any]) -> None:
    raise UnrecoverableJobError(f"bad input {data['n']}")


async def _flaky(data: dict[str, Any], ctx: JobContext) -> str:
    if ctx.job.attempts_made == 0:
        raise ValueError("first attempt fails")
    return "second attempt"


async def _wait_forever(data: dict[str, Any], ctx: JobContext) -> None:
    STARTED[ctx.job.id].set()
    await asyncio.sleep(60)


def _block(data: dict[str, Any], ctx: JobContext) -> str:
    time.sleep(0.5)  # ignores the request: finishing afterwards is still not a success
    return "ran on"


HANDLERS: dict[str, Callable[..., Any]] = {
    "double": _double, "thread.name": _thread_name, "refuse": _refuse, "flaky": _flaky,
    "wait": _wait_forever, "block": _block}


@pytest.fixture
async def dispatcher(settings: Settings, client: QueueClient, redis_url: str
                     ) -> AsyncIterator[Dispatcher]:
    dispatch = Dispatcher(Registry(HANDLERS), settings, client, threads=4)
    worker = QueueWorker(redis_url, client.name, settings.worker_prefix,
                         worker_options(settings, 4), dispatch)
    dispatch.worker_id = worker.worker_id
    worker.start(on_error=lambda exc: None)
    yield dispatch
    await worker.close(5)
    dispatch.shutdown()


async def _finished(client: QueueClient, job_id: str, timeout_s: float = 10) -> JobRecord:
    deadline = time.monotonic() + timeout_s
    while True:
        record = await client.get_job(job_id)
        if record is not None and record.state in ("completed", "failed"):
            return record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.02)


async def _started(client: QueueClient, task: str) -> str:
    job_id = await client.add(task, {}, JobOptions(attempts=3, backoff_delay_ms=100))
    STARTED[job_id] = asyncio.Event()
    await asyncio.wait_for(STARTED[job_id].wait(), 10)
    return job_id


async def test_handlers_run_with_their_results_counted_per_task(
        dispatcher: Dispatcher, client: QueueClient) -> None:
    doubled = await client.add("double", {"n": 21}, JobOptions())
    threaded = await client.add("thread.name", {}, JobOptions())
    assert (await _finished(client, doubled)).return_value == 42
    record = await _finished(client, threaded)
    assert str(record.return_value).startswith("bullpen-job")
    assert (await client.get_logs(threaded)) == [f"in {record.return_value}"]
    tallies = {name: tally[:2] for name, tally in dispatcher.stats._tallies.items()}
    assert tallies == {"double": [1, 0], "thread.name": [1, 0]}
    assert dispatcher.running == {}


async def test_unknown_tasks_and_unrecoverable_errors_fail_at_once_others_retry(
        dispatcher: Dispatcher, client: QueueClient, caplog: pytest.LogCaptureFixture) -> None:
    options = JobOptions(attempts=3, backoff_delay_ms=50)
    unknown = await client.add("dubble", {}, options)
    refused = await client.add("refuse", {"n": 7}, options)
    flaky = await client.add("flaky", {}, options)
    # A missing handler may come with the next deploy: retried; an unrecoverable error is not.
    for job_id, attempts in ((unknown, 3), (refused, 1)):
        record = await _finished(client, job_id)
        assert (record.state, record.attempts_made) == ("failed", attempts)
    reason = (await _finished(client, unknown)).failed_reason
    assert str(reason).startswith(
        "no handler registered for task 'dubble' (known: block, double, flaky, refuse")
    assert "did you mean 'double'?" in str(reason)
    assert (await _finished(client, refused)).failed_reason == "bad input 7"
    record = await _finished(client, flaky)
    assert (record.state, record.return_value, record.attempts_made) == (
        "completed", "second attempt", 2)
    failed = [r.getMessage() for r in caplog.records if r.name == logs.get("worker").name]
    assert f"Job {refused} of type refuse failed (attempt 1 of 3): bad input 7" in failed
    assert f"Job {flaky} of type flaky failed (attempt 1 of 3): first attempt fails" in failed
    assert dispatcher.stats._tallies["flaky"][:2] == [1, 1]


async def test_a_cancel_request_stops_the_run_it_names_and_only_that(
        dispatcher: Dispatcher, client: QueueClient) -> None:
    job_id = await _started(client, "wait")
    token = dispatcher.running[job_id]
    assert not dispatcher.cancel(job_id, "another-run", JobCancelledError("stale"))
    assert not dispatcher.cancel("no-such-job", None, JobCancelledError("nobody"))
    assert dispatcher.cancel(job_id, token, JobCancelledError("by the test"))
    record = await _finished(client, job_id)
    assert (record.state, record.failed_reason, record.attempts_made) == (
        "failed", "cancelled: by the test", 1)
    assert job_id not in dispatcher.running


async def test_a_def_handler_that_runs_on_after_a_cancel_request_still_fails(
        dispatcher: Dispatcher, client: QueueClient) -> None:
    job_id = await client.add("block", {}, JobOptions(attempts=3))
    deadline = time.monotonic() + 10
    while job_id not in dispatcher.running:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    dispatcher.deliver(CancelRequest(job_id, dispatcher.running[job_id], "stop it"))
    record = await _finished(client, job_id)
    assert (record.state, record.failed_reason) == ("failed", "cancelled: stop it")
