"""The dispatcher in-process on a real queue worker: results, failures, retries, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bullpen import logs
from bullpen.adapter import ActiveJob, JobOptions, JobRecord, QueueClient, QueueWorker
from bullpen.cancellation import CancelRequest
from bullpen.definitions.task import Registry, isolated
from bullpen.errors import JobCancelledError, UnrecoverableJobError
from bullpen.runtime import dispatch as dispatch_module
from bullpen.runtime.context import JobContext
from bullpen.runtime.dispatch import EARLY_MAX, Dispatcher
from bullpen.runtime.series import FAILED, FINE_STEP_MIN, MAX_TASKS, OK, OTHER_TASK, RETRIED
from bullpen.runtime.served_queue import worker_options
from bullpen.settings import Settings

STARTED: dict[str, asyncio.Event] = {}
GATES: dict[str, threading.Event] = {}  # queue name -> what `gate` jobs wait for
MEETINGS: dict[str, threading.Barrier] = {}  # queue name -> where `meet` jobs wait for each other
# Set by the processor that calls the dispatcher: what a `def` handler should see as current.
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller")


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


async def _swallow(data: dict[str, Any], ctx: JobContext) -> str:
    STARTED[ctx.job.id].set()
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        if data.get("then") == "raise":
            raise ValueError("cleanup failed") from None
    return "ignored the request"


async def _notice(data: dict[str, Any], ctx: JobContext) -> None:
    STARTED[ctx.job.id].set()
    await ctx.wait_cancelled()
    if data.get("then") == "raise":
        raise ValueError("stopped badly")
    ctx.raise_if_cancelled()


def _gate(data: dict[str, Any], ctx: JobContext) -> str:
    GATES[ctx.queue.name].wait(3)
    return "through"


def _meet(data: dict[str, Any]) -> int:
    return MEETINGS[data["queue"]].wait()


def _caller(data: dict[str, Any]) -> list[Any]:
    return [data["n"], CALLER.get(None)]


HANDLERS: dict[str, Callable[..., Any]] = {
    "double": _double, "thread.name": _thread_name, "refuse": _refuse, "flaky": _flaky,
    "wait": _wait_forever, "block": _block, "context": _context, "swallow": _swallow,
    "notice": _notice, "gate": _gate, "meet": _meet, "caller": _caller,
    "isolated": isolated(_in_child)}


@contextlib.asynccontextmanager
async def _serving(settings: Settings, client: QueueClient, redis_url: str, *, threads: int = 4,
                   registry: Registry | None = None,
                   before: Callable[[Dispatcher, ActiveJob], None] | None = None
                   ) -> AsyncIterator[tuple[Dispatcher, QueueWorker]]:
    """A dispatcher consuming the test's queue; `before` runs in the slot ahead of each job."""
    dispatch = Dispatcher(registry or Registry(HANDLERS), settings, client, threads=threads)

    async def processor(active: ActiveJob) -> Any:
        if before is not None:
            before(dispatch, active)
        return await dispatch(active)

    worker = QueueWorker(redis_url, client.name, settings.worker_prefix,
                         worker_options(settings, threads),
                         dispatch if before is None else processor)
    dispatch.worker_id = worker.worker_id
    worker.start(on_error=lambda exc: None)
    try:
        yield dispatch, worker
    finally:
        await worker.close(2)
        dispatch.shutdown()


@pytest.fixture
async def dispatcher(settings: Settings, client: QueueClient, redis_url: str
                     ) -> AsyncIterator[Dispatcher]:
    async with _serving(settings, client, redis_url) as (dispatch, _worker):
        yield dispatch


async def _finished(client: QueueClient, job_id: str, timeout_s: float = 10,
                    retries: bool = False) -> JobRecord:
    """The job once completed or failed, or (unless `retries`) once delayed for a retry: a
    broken dispatcher then fails the test at once instead of at the timeout."""
    ends = ("completed", "failed") if retries else ("completed", "failed", "delayed")
    deadline = time.monotonic() + timeout_s
    while True:
        record = await client.get_job(job_id)
        if record is not None and record.state in ends:
            return record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.02)


async def _started(client: QueueClient, task: str, data: dict[str, Any] | None = None) -> str:
    # An id of its own, known before the handler can run (queues number their jobs alike).
    job_id = f"{task}-{uuid.uuid4().hex[:12]}"
    STARTED[job_id] = asyncio.Event()
    await client.add(task, data or {}, JobOptions(attempts=3, backoff_delay_ms=60_000,
                                                  job_id=job_id))
    deadline = time.monotonic() + 10
    while not STARTED[job_id].is_set():
        record = await client.get_job(job_id)
        assert record is None or record.state in ("waiting", "active"), record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.02)
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
        record = await _finished(client, job_id, retries=True)
        assert (record.state, record.attempts_made) == ("failed", attempts)
    reason = (await _finished(client, unknown, retries=True)).failed_reason
    assert str(reason).startswith(
        "no handler registered for task 'dubble' (known: block, caller, context, double, flaky, "
        "gate, isolated, meet, notice, refuse, swallow, thread.name, wait); "
        "did you mean 'double'?")
    assert (await _finished(client, refused)).failed_reason == "bad input 7"
    record = await _finished(client, flaky, retries=True)
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
    # The trace shown with the job is the cancellation's alone, no error of the dispatcher's.
    _assert_cancelled_trace(record, "cancelled: by the test")


def _assert_cancelled_trace(record: JobRecord, reason: str, cause: str | None = None) -> None:
    trace = record.stacktrace[-1]
    assert trace.endswith(f"JobCancelledError: {reason}"), trace
    if cause is None:
        assert trace.count("Traceback (most recent call last)") == 1, trace
    else:  # what the handler raised once told, then the cancellation it ends with
        assert trace.count("Traceback (most recent call last)") == 2, trace
        assert f"{cause}\n\nThe above exception was the direct cause" in trace, trace


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
    _assert_cancelled_trace(record, "cancelled: stop it")
    # It ran its 0.5 s to the end; bounded by the test's timeout above.
    assert 500 <= dispatcher.stats._tallies["block"][2] < 15_000


async def test_a_handler_that_catches_the_cancellation_still_ends_cancelled(
        dispatcher: Dispatcher, client: QueueClient, caplog: pytest.LogCaptureFixture) -> None:
    returned = await _started(client, "swallow")
    raised = await _started(client, "swallow", {"then": "raise"})
    for job_id in (returned, raised):
        assert dispatcher.cancel(job_id, None, JobCancelledError(f"stop {job_id}"))
    for job_id, cause in ((returned, None), (raised, "ValueError: cleanup failed")):
        record = await _finished(client, job_id)
        assert (record.state, record.failed_reason, record.attempts_made) == (
            "failed", f"cancelled: stop {job_id}", 1)
        _assert_cancelled_trace(record, f"cancelled: stop {job_id}", cause)
        assert f"Job {job_id} of type swallow stopped (attempt 1): cancelled: stop {job_id}" in (
            caplog.messages)
    assert _outcomes(dispatcher) == {"swallow": [0, 2, 0]}
    assert dispatcher.running == {}


def _cancel_before_start(dispatch: Dispatcher, active: ActiveJob) -> None:
    """The cancel listener hears of a job after its fetch, before its handler starts."""
    early = active.record.data.get("early")
    if early is not None:
        token = active.token if early == "this run" else early
        dispatch.deliver(CancelRequest(active.id, token, "before it started"))


def _set_caller(dispatch: Dispatcher, active: ActiveJob) -> None:
    CALLER.set(f"slot of {active.id}")
    _cancel_before_start(dispatch, active)


async def test_a_cancel_request_heard_before_the_handler_starts_applies_when_it_starts(
        settings: Settings, client: QueueClient, redis_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    async with _serving(settings, client, redis_url, before=_set_caller) as (
            dispatch, _worker):
        # One kept for a job this worker never runs: the others start beside it.
        dispatch.deliver(CancelRequest("not-here", "its-token", "elsewhere"))
        options = JobOptions(attempts=3)
        cancelled = await client.add("double", {"n": 1, "early": "this run"}, options)
        stale = await client.add("double", {"n": 2, "early": "an-earlier-run"}, options)
        plain = await client.add("caller", {"n": 3}, options)
        record = await _finished(client, cancelled)
        assert (record.state, record.failed_reason, record.attempts_made) == (
            "failed", "cancelled: before it started", 1)
        assert (f"Job {cancelled} of type double stopped (attempt 1): cancelled: before it "
                "started") in caplog.messages
        assert (await _finished(client, stale)).return_value == 4
        # A `def` handler runs in its caller's context (the job's span is current there).
        assert (await _finished(client, plain)).return_value == [3, f"slot of {plain}"]
        assert dispatch.running == {}


async def test_requests_for_jobs_never_started_expire_and_are_kept_at_most_early_max(
        dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch_module, "EARLY_KEEP_S", 0.0)
    for n in range(EARLY_MAX - 1):
        dispatcher.deliver(CancelRequest(f"gone-{n}", "token", None))
    monkeypatch.setattr(dispatch_module, "EARLY_KEEP_S", 10.0)
    dispatcher.deliver(CancelRequest("live", "token", None))
    # At the bound the expired ones go, the live one stays.
    dispatcher.deliver(CancelRequest("next", "token", None))
    assert sorted(dispatcher._early) == ["live", "next"]
    for n in range(EARLY_MAX - 2):
        dispatcher.deliver(CancelRequest(f"flood-{n}", "token", None))
    # At the bound with none expired (a flood for other workers' jobs): all are dropped.
    dispatcher.deliver(CancelRequest("last", "token", None))
    assert sorted(dispatcher._early) == ["last"]


async def test_at_the_shutdown_notice_a_stopping_handler_hands_its_job_back_others_fail(
        settings: Settings, client: QueueClient, redis_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    async with _serving(settings, client, redis_url) as (dispatch, worker):
        stops = await _started(client, "notice")
        raises = await _started(client, "notice", {"then": "raise"})
        # As ServedQueue.close does: the notice comes while the worker drains.
        asyncio.get_running_loop().call_later(0.1, dispatch.cancel_all,
                                              JobCancelledError(shutdown=True))
        assert await worker.close(2)
    stopped = await client.get_job(stops)
    assert stopped is not None and (stopped.state, stopped.attempts_made) == ("waiting", 0)
    failed = await client.get_job(raises)
    assert failed is not None and (failed.state, failed.failed_reason, failed.attempts_made) == (
        "delayed", "stopped badly", 1)
    assert (f"Job {stops} of type notice stopped (attempt 1): the worker is shutting down: the "
            "job goes back to waiting") in caplog.messages
    assert f"Job {raises} of type notice failed (attempt 1 of 3): stopped badly" in (
        caplog.messages)


async def test_jobs_abandoned_at_the_close_timeout_log_no_outcome_and_free_the_process(
        settings: Settings, client: QueueClient, redis_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    GATES[client.name] = threading.Event()
    async with _serving(settings, client, redis_url) as (dispatch, worker):
        waiting = await _started(client, "wait")
        gated = await client.add("gate", {}, JobOptions())
        deadline = time.monotonic() + 10
        while gated not in dispatch.running:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert not await worker.close(0.2)
        # Its `def` handler runs on, but the process is not held until it returns.
        started = time.perf_counter()
        dispatch.shutdown()
        assert time.perf_counter() - started < 1.0
        GATES[client.name].set()
    for job_id in (waiting, gated):
        record = await client.get_job(job_id)
        assert record is not None and record.state == "active"  # its lock expires: run again
        assert not [line for line in caplog.messages
                    if line.startswith(f"Job {job_id} ") and "attempt" in line]


async def test_each_running_def_job_has_a_thread_past_the_executor_s_default_cap(
        settings: Settings, client: QueueClient, redis_url: str) -> None:
    jobs = 33  # ThreadPoolExecutor's default is at most 32 threads
    MEETINGS[client.name] = threading.Barrier(jobs, timeout=5)
    async with _serving(settings, client, redis_url, threads=jobs):
        ids = [await client.add("meet", {"queue": client.name}, JobOptions())
               for _ in range(jobs)]
        records = [await _finished(client, job_id) for job_id in ids]
    assert [record.state for record in records] == ["completed"] * jobs


async def test_past_max_tasks_names_a_stray_task_counts_as_other_not_a_registered_one(
        settings: Settings, client: QueueClient, redis_url: str) -> None:
    many = Registry({**HANDLERS, **{f"task{n:02}": _double for n in range(MAX_TASKS)}})
    async with _serving(settings, client, redis_url, registry=many) as (dispatch, _worker):
        stray = await client.add("stray", {}, JobOptions())
        assert (await _finished(client, stray)).state == "failed"
        assert _outcomes(dispatch) == {OTHER_TASK: [0, 1, 0]}
