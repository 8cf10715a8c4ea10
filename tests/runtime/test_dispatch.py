"""The dispatcher in-process on a real queue worker: results, failures, retries, cancellation."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bullpen import logs
from bullpen.adapter import JobOptions, JobRecord, QueueClient, QueueWorker
from bullpen.cancellation import CancelRequest
from bullpen.definitions.task import Registry, isolated
from bullpen.errors import JobCancelledError, UnrecoverableJobError
from bullpen.runtime.context import JobContext
from bullpen.runtime.dispatch import Dispatcher
from bullpen.runtime.series import FAILED, FINE_STEP_MIN, OK, RETRIED
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


async def _context(data: dict[str, Any], ctx: JobContext) -> list[Any]:
    return [ctx.worker_id, ctx.settings.worker_default_queue, await ctx.redis.ping()]


def _in_child(data: dict[str, Any], ctx: JobContext) -> list[Any]:
    return [data["n"] * 3, ctx.job.id, os.getpid()]


def _block(data: dict[str, Any], ctx: JobContext) -> str:
    time.sleep(0.5)  # ignores the request: finishing afterwards is still not a success
    return "ran on"


HANDLERS: dict[str, Callable[..., Any]] = {
    "double": _double, "thread.name": _thread_name, "refuse": _refuse, "flaky": _flaky,
    "wait": _wait_forever, "block": _block, "context": _context,
    "isolated": isolated(_in_child)}


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


def _outcomes(dispatcher: Dispatcher) -> dict[str, list[int]]:
    """Task → [ok, failed, retried] attempts in the dispatcher's unflushed series (summed
    over its time slots: the attempts may straddle a slot boundary)."""
    outcomes: dict[str, list[int]] = {}
    for (step, _, name), tally in dispatcher.stats.series.drain().items():
        if step == FINE_STEP_MIN:
            total = outcomes.setdefault(name, [0, 0, 0])
            for index, outcome in enumerate((OK, FAILED, RETRIED)):
                total[index] += tally[outcome]
    return outcomes


async def test_handlers_run_with_their_results_counted_per_task(
        dispatcher: Dispatcher, client: QueueClient, settings: Settings,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bullpen.worker")
    doubled = await client.add("double", {"n": 21}, JobOptions())
    threaded = await client.add("thread.name", {}, JobOptions())
    context = await client.add("context", {}, JobOptions())
    assert (await _finished(client, doubled)).return_value == 42
    assert (await _finished(client, context)).return_value == [
        dispatcher.worker_id, settings.worker_default_queue, True]
    assert f"Processing job {doubled} of type double" in caplog.messages
    record = await _finished(client, threaded)
    assert str(record.return_value).startswith("bullpen-job")
    assert (await client.get_logs(threaded)) == [f"in {record.return_value}"]
    tallies = {name: tally[:2] for name, tally in dispatcher.stats._tallies.items()}
    assert tallies == {name: [1, 0] for name in ("double", "thread.name", "context")}
    assert dispatcher.running == {}


async def test_an_isolated_handler_runs_in_a_child_process_with_the_job(
        dispatcher: Dispatcher, client: QueueClient) -> None:
    in_child = await client.add("isolated", {"n": 5}, JobOptions())
    tripled, job_id, pid = (await _finished(client, in_child, 30)).return_value
    assert (tripled, job_id) == (15, in_child) and pid != os.getpid()


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
        "no handler registered for task 'dubble' (known: block, context, double, flaky, "
        "isolated, refuse, thread.name, wait); did you mean 'double'?")
    assert (await _finished(client, refused)).failed_reason == "bad input 7"
    record = await _finished(client, flaky)
    assert (record.state, record.return_value, record.attempts_made) == (
        "completed", "second attempt", 2)
    # The failed attempt left its reason and traceback on the job, as Node's worker does.
    assert record.failed_reason == "first attempt fails" and len(record.stacktrace) == 1
    assert record.stacktrace[0].rstrip().endswith("ValueError: first attempt fails")
    failed = [r.getMessage() for r in caplog.records if r.name == logs.get("worker").name]
    assert f"Job {refused} of type refuse failed (attempt 1 of 3): bad input 7" in failed
    assert f"Job {flaky} of type flaky failed (attempt 1 of 3): first attempt fails" in failed
    assert dispatcher.stats._tallies["flaky"][:2] == [1, 1]
    # A failed attempt BullMQ will run again counts as retried, the last one as failed.
    assert _outcomes(dispatcher) == {"dubble": [0, 1, 2], "refuse": [0, 1, 0],
                                     "flaky": [1, 0, 1]}


async def test_a_cancel_request_stops_the_run_it_names_and_only_that(
        dispatcher: Dispatcher, client: QueueClient, caplog: pytest.LogCaptureFixture) -> None:
    job_id = await _started(client, "wait")
    token = dispatcher.running[job_id]
    assert not dispatcher.cancel(job_id, "another-run", JobCancelledError("stale"))
    assert not dispatcher.cancel("no-such-job", None, JobCancelledError("nobody"))
    # From the cancel listener: a request naming an earlier run of this job, or a job this
    # worker has not started, is kept aside, not applied to what runs now.
    dispatcher.deliver(CancelRequest(job_id, "an-earlier-run", "stale"))
    dispatcher.deliver(CancelRequest("not-started", "its-token", "early"))
    await asyncio.sleep(0.2)
    assert dispatcher.running == {job_id: token}
    assert dispatcher.cancel(job_id, token, JobCancelledError("by the test"))
    record = await _finished(client, job_id)
    assert (record.state, record.failed_reason, record.attempts_made) == (
        "failed", "cancelled: by the test", 1)
    assert job_id not in dispatcher.running
    assert f"Job {job_id} of type wait stopped (attempt 1): cancelled: by the test" in (
        caplog.messages)
    assert _outcomes(dispatcher) == {"wait": [0, 1, 0]}  # cancelled: never retried


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
    # It ran its 0.5 s to the end; bounded by the test's timeout above.
    assert 500 <= dispatcher.stats._tallies["block"][2] < 15_000
