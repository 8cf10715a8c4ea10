"""Running jobs to their end: retries, failures, hand-backs, schedule ticks, outages, observers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from bullpen.adapter import (
    ActiveJob,
    JobOptions,
    Operation,
    Processor,
    QueueClient,
    QueueWorker,
    WorkerOptions,
)
from bullpen.adapter.scripts import port_script
from bullpen.errors import JobCancelledError, LockLostError, ScheduleIterationError


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


ONE_SLOT = WorkerOptions(concurrency=1)


async def _work(redis_url: str, queue_name: str, handler: Any, done: Callable[[], Any],
                what: str, observer: _Observer | None = None) -> list[BaseException]:
    """Run a one-slot worker until `done()` holds; the errors it reported."""
    errors: list[BaseException] = []
    worker = QueueWorker(redis_url, queue_name, "bull", ONE_SLOT, handler, observer)
    worker.start(on_error=errors.append)
    try:
        await _until(done, 10, what)
    finally:
        await worker.close(5)
    return errors


async def _events(raw_redis: Any, queue_name: str, job_id: str) -> list[dict[str, str]]:
    """The job's entries in the queue's event stream, as Node's QueueEvents reads them."""
    entries = await raw_redis.xrange(f"bull:{queue_name}:events")
    return [fields for _id, fields in entries if fields.get("jobId") == job_id]


async def _moves(raw_redis: Any, queue_name: str, job_id: str) -> list[tuple[str, str | None]]:
    """The job's `waiting` and `delayed` events, each with the state it came from."""
    events = await _events(raw_redis, queue_name, job_id)
    return [(event["event"], event.get("prev")) for event in events
            if event["event"] in ("waiting", "delayed")]


async def _set_opts(raw_redis: Any, queue_name: str, job_id: str, **extra: Any) -> None:
    """Options bullpen's client does not write but a Node producer may (`lifo`, ...)."""
    key = f"bull:{queue_name}:{job_id}"
    opts = json.loads(await raw_redis.hget(key, "opts"))
    await raw_redis.hset(key, "opts", json.dumps(opts | extra))


async def _completed(client: QueueClient, count: int) -> bool:
    return (await client.get_counts(["completed"]))["completed"] == count


@pytest.mark.parametrize("delay_ms", [1, 40])
async def test_a_retry_with_backoff_waits_in_delayed_for_node_s_exponential_delay(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any,
        delay_ms: int) -> None:
    runs: list[float] = []

    async def flaky(job: ActiveJob) -> str:
        runs.append(time.monotonic())
        if len(runs) < 3:
            raise RuntimeError(f"smtp down {len(runs)}")
        return "sent"

    job_id = await client.add("mail", {}, JobOptions(attempts=3, backoff_delay_ms=delay_ms))
    errors = await _work(redis_url, queue_name, flaky,
                         lambda: _state_is(client, job_id, "completed"), "the third attempt")
    assert errors == []
    job = await raw_redis.hgetall(f"bull:{queue_name}:{job_id}")
    assert (job["atm"], job["returnvalue"], job["failedReason"]) == ("3", '"sent"', "smtp down 2")
    # Each failure waited in `delayed` (even for 1 ms), then came back to waiting from there.
    assert await _moves(raw_redis, queue_name, job_id) == [
        ("waiting", None), ("delayed", None), ("waiting", "delayed"), ("delayed", None),
        ("waiting", "delayed")]
    # Less the millisecond BullMQ's timestamps are truncated to.
    assert runs[1] - runs[0] >= (delay_ms - 1) / 1000
    assert runs[2] - runs[1] >= (2 * delay_ms - 1) / 1000


@pytest.mark.parametrize("lifo", [False, True])
async def test_a_retry_without_backoff_waits_again_at_once_first_in_line_if_lifo(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any,
        lifo: bool) -> None:
    # retryJob, as Node: back to waiting with no `delayed` step; `lifo` puts it first in line.
    first = await client.add("a", {}, JobOptions(attempts=2, backoff_delay_ms=0))
    if lifo:
        await _set_opts(raw_redis, queue_name, first, lifo=True)
    others = [await client.add(name, {}, JobOptions()) for name in ("b", "c")]
    order: list[str] = []

    async def fails_once(job: ActiveJob) -> None:
        order.append(job.id)
        if order == [first]:
            raise RuntimeError("flaky")

    errors = await _work(redis_url, queue_name, fails_once, lambda: _completed(client, 3),
                         "the three jobs")
    assert errors == []
    assert order == ([first, first, *others] if lifo else [first, *others, first])
    assert await _moves(raw_redis, queue_name, first) == [("waiting", None), ("waiting", "active")]
    assert await raw_redis.hget(f"bull:{queue_name}:{first}", "atm") == "2"


@pytest.mark.parametrize(("limit", "kept"), [(None, 3), (0, 0), (1, 1), (2, 2)])
async def test_a_final_failure_keeps_the_last_tracebacks_up_to_stack_trace_limit(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any,
        limit: int | None, kept: int) -> None:
    job_id = await client.add("doomed", {}, JobOptions(attempts=3, backoff_delay_ms=0))
    if limit is not None:
        await _set_opts(raw_redis, queue_name, job_id, stackTraceLimit=limit)
    raised: list[RuntimeError] = []

    async def boom(job: ActiveJob) -> None:
        raised.append(RuntimeError(f"boom {len(raised) + 1}"))
        raise raised[-1]

    errors = await _work(redis_url, queue_name, boom,
                         lambda: _state_is(client, job_id, "failed"), "the final failure")
    assert errors == []
    job = await raw_redis.hgetall(f"bull:{queue_name}:{job_id}")
    assert (job["atm"], job["failedReason"]) == ("3", "boom 3")
    traces = ["".join(traceback.format_exception(error)).rstrip() for error in raised]
    # Compact JSON, as Node's JSON.stringify writes it: the tracebacks of the last attempts.
    assert job["stacktrace"] == json.dumps(traces[len(traces) - kept:], separators=(",", ":"))
    assert {"event": "failed", "jobId": job_id, "failedReason": "boom 3", "prev": "active"} in (
        await _events(raw_redis, queue_name, job_id))


async def test_an_unknown_backoff_type_fails_at_once_saying_why(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any) -> None:
    job_id = await client.add("custom", {}, JobOptions(attempts=3, backoff_type="mine"))

    async def boom(job: ActiveJob) -> None:
        raise RuntimeError("boom")

    errors = await _work(redis_url, queue_name, boom,
                         lambda: _state_is(client, job_id, "failed"), "the failure")
    job = await raw_redis.hgetall(f"bull:{queue_name}:{job_id}")
    assert errors == [] and job["atm"] == "1"
    assert job["failedReason"] == ("boom; not retried: unknown backoff type 'mine' (bullpen "
                                   "computes 'fixed' and 'exponential')")


@pytest.mark.parametrize("attempts", [2, 1], ids=["moveToDelayed", "moveToFinished"])
async def test_a_failure_s_finish_brings_back_the_next_waiting_job(
        redis_url: str, queue_name: str, client: QueueClient, attempts: int) -> None:
    # As Node's worker: the failing job's script also takes the next job (no moveToActive
    # round trip), which then runs under the same lock token.
    failing = await client.add("fails", {}, JobOptions(attempts=attempts,
                                                       backoff_delay_ms=60_000))
    following = await client.add("next", {}, JobOptions())
    tokens: dict[str, str] = {}

    async def handler(job: ActiveJob) -> None:
        tokens[job.id] = job.token
        if job.id == failing:
            raise RuntimeError("boom")

    errors = await _work(redis_url, queue_name, handler,
                         lambda: _state_is(client, following, "completed"), "the next job")
    assert errors == [] and tokens[following] == tokens[failing]
    assert await _state_is(client, failing, "delayed" if attempts == 2 else "failed")


@pytest.mark.parametrize("attempts", [2, 1], ids=["moveToDelayed", "moveToFinished"])
async def test_a_closing_worker_s_failing_job_brings_back_no_next_job(
        redis_url: str, queue_name: str, client: QueueClient, attempts: int) -> None:
    failing = await client.add("fails", {}, JobOptions(attempts=attempts,
                                                       backoff_delay_ms=60_000))
    waiting = await client.add("next", {}, JobOptions())
    release = asyncio.Event()
    ran: list[str] = []

    async def handler(job: ActiveJob) -> None:
        ran.append(job.id)
        await release.wait()
        raise RuntimeError("boom")

    errors: list[BaseException] = []
    worker = QueueWorker(redis_url, queue_name, "bull", ONE_SLOT, handler)
    worker.start(on_error=errors.append)
    await _until(lambda: _true(ran == [failing]), 10, "the first job")
    closing = asyncio.ensure_future(worker.close(5))
    await asyncio.sleep(0.01)  # close() has begun: the worker takes no new job
    release.set()
    assert await closing and errors == [] and ran == [failing]
    assert await _state_is(client, failing, "delayed" if attempts == 2 else "failed")
    assert await _state_is(client, waiting, "waiting")


@pytest.mark.parametrize(("options", "error", "command"), [
    (JobOptions(attempts=2, backoff_delay_ms=60_000), RuntimeError, "moveToDelayed"),
    (JobOptions(attempts=2, backoff_delay_ms=0), RuntimeError, "retryJob"),
    (JobOptions(), RuntimeError, "moveToFinished"),
    (JobOptions(), lambda: JobCancelledError(shutdown=True), "moveJobFromActiveToWait"),
])
async def test_a_refused_failure_or_hand_back_reaches_on_error_naming_its_script(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any,
        options: JobOptions, error: Callable[[], BaseException], command: str) -> None:
    errors: list[BaseException] = []

    async def handler(job: ActiveJob) -> None:
        await raw_redis.delete(f"bull:{queue_name}:{job.id}:lock")  # as if it had expired
        raise error()

    job_id = await client.add("lost", {}, options)
    observer = _Observer()
    worker = QueueWorker(redis_url, queue_name, "bull", ONE_SLOT, handler, observer)
    worker.start(on_error=errors.append)
    try:
        await _until(lambda: _true(bool(errors)), 10, "the refusal")
    finally:
        await worker.close(5)
    assert [str(error) for error in errors] == [f"Missing lock for job {job_id}. {command}"]
    assert await _state_is(client, job_id, "active")
    [calls] = observer.attempts[job_id]
    assert calls[-2:] == [("finished", False), ("close",)]  # metrics count no finish


async def test_a_handler_stopped_by_the_shutdown_signal_hands_its_job_back_uncounted(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any) -> None:
    runs: list[str] = []

    async def handler(job: ActiveJob) -> str:
        runs.append(job.id)
        if len(runs) == 1:
            raise JobCancelledError(shutdown=True)
        return "done"

    job_id = await client.add("long", {}, JobOptions(attempts=1))
    errors = await _work(redis_url, queue_name, handler,
                         lambda: _state_is(client, job_id, "completed"), "the second run")
    assert errors == [] and runs == [job_id, job_id]
    job = await raw_redis.hgetall(f"bull:{queue_name}:{job_id}")
    assert job["atm"] == "1" and "failedReason" not in job  # the handed-back run did not count
    assert await _moves(raw_redis, queue_name, job_id) == [("waiting", None), ("waiting", "active")]


class _Attempt:
    """Records what the runner tells an observer; gives every finish a `tm` of its own."""

    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    @contextlib.contextmanager
    def next_tick(self, scheduler_id: str) -> Iterator[None]:
        self.calls.append(("next_tick", scheduler_id))
        yield
        self.calls.append(("next_tick done",))

    def handled(self, result_json: str | None, error: BaseException | None) -> None:
        self.calls.append(("handled", result_json, repr(error) if error else None))

    def finishing(self, operation: Operation) -> str | None:
        self.calls.append(("finishing", operation))
        return json.dumps({"op": operation})

    def finished(self, ok: bool) -> None:
        self.calls.append(("finished", ok))

    def close(self) -> None:
        self.calls.append(("close",))


class _Observer:
    """A JobObserver that keeps each attempt's calls, per job id in run order."""

    def __init__(self) -> None:
        self.attempts: dict[str, list[list[tuple[Any, ...]]]] = {}

    def attempt(self, active: ActiveJob) -> _Attempt:
        calls: list[tuple[Any, ...]] = []
        self.attempts.setdefault(active.id, []).append(calls)
        return _Attempt(calls)


def _ended(operation: str) -> list[tuple[Any, ...]]:
    return [("finishing", operation), ("finished", True), ("close",)]


async def test_an_observer_hears_how_each_attempt_ends_and_failures_store_its_tm(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any) -> None:
    # What tracing names its finish spans after (Node's delay/retry/fail/complete, wait for a
    # hand-back); the context it returns for a failure is stored in the job's `tm` field.
    backed_off = await client.add("a", {}, JobOptions(attempts=2, backoff_delay_ms=1))
    retried = await client.add("b", {}, JobOptions(attempts=2, backoff_delay_ms=0))
    runs: list[str] = []

    async def handler(job: ActiveJob) -> str:
        runs.append(job.id)
        if job.id == retried and runs.count(retried) == 1:
            raise JobCancelledError(shutdown=True)
        if job.id == backed_off or runs.count(retried) == 2:
            raise RuntimeError("boom")
        return "done"

    observer = _Observer()
    errors = await _work(redis_url, queue_name, handler, lambda: _completed(client, 1),
                         "the retried job", observer)
    await _until(lambda: _state_is(client, backed_off, "failed"), 10, "the other job")
    failed = ("handled", None, "RuntimeError('boom')")
    assert errors == [] and observer.attempts == {
        backed_off: [[failed, *_ended("delay")], [failed, *_ended("fail")]],
        retried: [_ended("wait"), [failed, *_ended("retry")],
                  [("handled", '"done"', None), *_ended("complete")]]}
    job = await raw_redis.hgetall(f"bull:{queue_name}:{backed_off}")
    assert job["tm"] == '{"op": "fail"}' and job["failedReason"] == "boom"
    assert len(json.loads(job["stacktrace"])) == 2
    assert await raw_redis.hget(f"bull:{queue_name}:{retried}", "tm") == '{"op": "retry"}'


@pytest.mark.parametrize("observed", [False, True])
async def test_a_schedule_s_tick_creates_the_next_one_before_its_handler_runs(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any,
        observed: bool) -> None:
    # As Node's worker: the next iteration exists before the tick's job runs, so a slow or
    # failing handler delays no tick.
    await client.upsert_scheduler("each-minute", "tick", {"n": 1}, pattern=None,
                                  every_ms=60_000, tz=None, options=JobOptions())
    [tick] = await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1)
    following = f"repeat:each-minute:{int(tick.rsplit(':', 1)[1]) + 60_000}"
    delayed: list[list[str]] = []

    async def handler(job: ActiveJob) -> None:
        delayed.append(await raw_redis.zrange(f"bull:{queue_name}:delayed", 0, -1))

    observer = _Observer() if observed else None
    errors = await _work(redis_url, queue_name, handler,
                         lambda: _state_is(client, tick, "completed"), "the tick", observer)
    assert errors == [] and delayed == [[following]]
    job = await raw_redis.hgetall(f"bull:{queue_name}:{following}")
    assert (job["name"], job["data"], job["rjk"]) == ("tick", '{"n":1}', "each-minute")
    if observer is not None:
        assert observer.attempts == {tick: [[
            ("next_tick", "each-minute"), ("next_tick done",), ("handled", "null", None),
            *_ended("complete")]]}


async def test_a_tick_whose_next_one_cannot_be_computed_runs_and_reports_why(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any) -> None:
    # A fixed-offset zone such as "UTC+2" (which a Node producer's cron library may take) is
    # no IANA name: bullpen cannot compute the next tick, says so once, and runs this one.
    await client.upsert_scheduler("each-second", "tick", {}, pattern="* * * * * *",
                                  every_ms=None, tz=None, options=JobOptions())
    [tick] = await raw_redis.zrange(f"bull:{queue_name}:delayed", 0, -1)
    key = f"bull:{queue_name}:{tick}"
    opts = json.loads(await raw_redis.hget(key, "opts"))
    await raw_redis.hset(key, "opts", json.dumps(opts | {"repeat": opts["repeat"] | {
        "tz": "UTC+2"}}))
    ran: list[str] = []

    async def handler(job: ActiveJob) -> None:
        ran.append(job.id)

    errors = await _work(redis_url, queue_name, handler,
                         lambda: _state_is(client, tick, "completed"), "the tick")
    assert ran == [tick] and [type(error) for error in errors] == [ScheduleIterationError]
    assert str(errors[0]) == (
        f"schedule 'each-second': the tick after job {tick} could not be created (ValueError: "
        "unknown time zone 'UTC+2' (expected an IANA name such as 'Europe/Paris' or 'UTC'))")
    assert await raw_redis.zcard(f"bull:{queue_name}:delayed") == 0


async def test_a_job_whose_options_are_not_an_object_fails_at_once_with_the_reason(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any) -> None:
    job_id = await client.add("odd", {}, JobOptions(attempts=3))
    await raw_redis.hset(f"bull:{queue_name}:{job_id}", "opts", "[3]")  # another producer's
    ran: list[str] = []

    async def handler(job: ActiveJob) -> None:
        ran.append(job.id)

    # Read raw: the port's Job.fromJSON cannot decode these options either.
    errors = await _work(redis_url, queue_name, handler,
                         lambda: raw_redis.zscore(f"bull:{queue_name}:failed", job_id),
                         "the failure")
    reason = (f"job {job_id}: its options are not a JSON object; it was written by a producer "
              "bullpen cannot read: fix the producer")
    assert ran == [] and [str(error) for error in errors] == [reason]
    job = await raw_redis.hgetall(f"bull:{queue_name}:{job_id}")
    assert (job["atm"], job["failedReason"]) == ("1", reason)


class _Tap:
    """A TCP proxy to the test Redis that runs a hook as each call of a listed script goes to
    Redis (the moment that call is under way); a hook that returns True cuts the connection
    instead, before Redis sees the call: an outage at exactly that step."""

    def __init__(self, redis_url: str, hooks: dict[str, Callable[[], bool | None]]) -> None:
        parts = urlsplit(redis_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._path = parts.path
        self._hooks = {port_script(name).sha.encode(): hook for name, hook in hooks.items()}
        self._server: asyncio.Server | None = None
        self.calls: Counter[bytes] = Counter()

    def called(self, script: str) -> int:
        return self.calls[port_script(script).sha.encode()]

    def _cuts(self, data: bytes) -> bool:
        for sha, hook in self._hooks.items():
            if sha in data:
                self.calls[sha] += 1
                return bool(hook())
        return False

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self._path}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                       watch: bool) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    if watch and self._cuts(data):
                        break
                    sink.write(data)
                    await sink.drain()
            for end in (writer, up_writer):
                end.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))


class _Cutter(_Tap):
    """A tap that cuts the first two calls of one script: an outage at exactly that step, then
    Redis answers again. Two, because the command connection sends an unanswered command once
    more itself. With `for_s`, every call of the script is cut for that long after the first."""

    def __init__(self, redis_url: str, script: str, for_s: float = 0) -> None:
        super().__init__(redis_url, {script: self._cut})
        self.cuts = 0
        self._for_s = for_s
        self._until = 0.0

    def _cut(self) -> bool:
        if self._for_s:
            self._until = self._until or time.monotonic() + self._for_s
            cut = time.monotonic() < self._until
        else:
            cut = self.cuts < 2
        self.cuts += cut
        return cut


async def _run_through(proxy: _Tap, queue_name: str, handler: Processor,
                       until: Callable[[], Awaitable[Any]], what: str,
                       options: WorkerOptions = ONE_SLOT, observer: _Observer | None = None,
                       made: list[QueueWorker] | None = None,
                       ) -> tuple[list[BaseException], list[BaseException | None]]:
    """Run one worker connected through `proxy` until `until()` holds, then close both; the
    errors and outages the worker reported. `made` receives the worker before it starts."""
    errors: list[BaseException] = []
    outages: list[BaseException | None] = []
    worker = QueueWorker(await proxy.start(), queue_name, "bull", options, handler, observer)
    if made is not None:
        made.append(worker)
    worker.start(on_error=errors.append, on_connection=outages.append)
    try:
        await _until(until, 10, what)
    finally:
        await worker.close(5)  # it waits for the slots, which deal with any job in hand first
        await proxy.close()
    return errors, outages


async def test_a_tick_s_next_one_is_created_through_an_outage_at_that_moment(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any) -> None:
    await client.upsert_scheduler("each-minute", "tick", {}, pattern=None, every_ms=60_000,
                                  tz=None, options=JobOptions())
    [tick] = await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1)
    following = f"repeat:each-minute:{int(tick.rsplit(':', 1)[1]) + 60_000}"
    cutter = _Cutter(redis_url, "updateJobScheduler-12")
    delayed: list[list[str]] = []

    async def handler(job: ActiveJob) -> None:
        delayed.append(await raw_redis.zrange(f"bull:{queue_name}:delayed", 0, -1))

    errors, outages = await _run_through(
        cutter, queue_name, handler, lambda: _state_is(client, tick, "completed"), "the tick")
    assert cutter.cuts == 2 and errors == [] and delayed == [[following]]
    assert [type(outage).__name__ for outage in outages] == ["ConnectionError", "NoneType"]


@pytest.mark.parametrize("script", ["moveToFinished-14", "moveToDelayed-11", "retryJob-11",
                                    "moveJobFromActiveToWait-9"])
async def test_a_finish_cut_off_by_an_outage_is_sent_again_once_redis_answers(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any,
        script: str) -> None:
    # The lock (30 s) outlasts this outage: the runner retries the same finish, once.
    cutter = _Cutter(redis_url, script)
    runs: list[str] = []

    async def handler(job: ActiveJob) -> str:
        runs.append(job.id)
        if len(runs) == 1 and script == "moveJobFromActiveToWait-9":
            raise JobCancelledError(shutdown=True)
        if len(runs) == 1 and script != "moveToFinished-14":
            raise RuntimeError("boom")
        return "done"

    job_id = await client.add("cut", {}, JobOptions(
        attempts=2, backoff_delay_ms=1 if script == "moveToDelayed-11" else 0))
    errors, outages = await _run_through(
        cutter, queue_name, handler, lambda: _state_is(client, job_id, "completed"), "the job")
    assert cutter.cuts == 2 and errors == []
    assert [type(outage).__name__ for outage in outages] == ["ConnectionError", "NoneType"]
    assert runs == [job_id] * (1 if script == "moveToFinished-14" else 2)
    expected = "1" if script in ("moveToFinished-14", "moveJobFromActiveToWait-9") else "2"
    assert await raw_redis.hget(f"bull:{queue_name}:{job_id}", "atm") == expected


async def test_a_finish_cut_off_longer_than_the_lock_is_given_up_and_the_job_runs_again(
        redis_url: str, queue_name: str, client: QueueClient) -> None:
    # Once the lock may have expired another worker may hold the job: the finish is dropped
    # (not sent late), the stalled check puts the job back and it runs again.
    options = WorkerOptions(concurrency=1, lock_duration_ms=300, stalled_interval_ms=300)
    # Tries at 0, 0.2 and 0.4 s all fail; the last is past the lock: the finish is given up.
    cutter = _Cutter(redis_url, "moveToFinished-14", for_s=0.8)
    runs: list[float] = []

    async def handler(job: ActiveJob) -> str:
        runs.append(time.monotonic())
        return "done"

    job_id = await client.add("cut", {}, JobOptions())
    observer = _Observer()
    errors, _outages = await _run_through(
        cutter, queue_name, handler, lambda: _state_is(client, job_id, "completed"), "the job",
        options, observer)
    assert errors == [] and len(runs) == 2
    assert runs[1] - runs[0] >= 0.3  # not before its lock expired
    done = ("handled", '"done"', None)
    assert observer.attempts[job_id] == [
        [done, ("finishing", "complete"), ("finished", False), ("close",)],
        [done, *_ended("complete")]]


async def test_a_job_still_running_when_close_times_out_is_left_to_its_lock(
        redis_url: str, queue_name: str, client: QueueClient) -> None:
    # Node's close(force): this worker records no outcome for it, even if its handler swallows
    # the cancellation and returns; a peer runs it again once the lock expires.
    started = asyncio.Event()

    async def handler(job: ActiveJob) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "late"
        return "never"

    job_id = await client.add("long", {}, JobOptions())
    errors: list[BaseException] = []
    observer = _Observer()
    worker = QueueWorker(redis_url, queue_name, "bull", ONE_SLOT, handler, observer)
    worker.start(on_error=errors.append)
    await asyncio.wait_for(started.wait(), 10)
    assert not await worker.close(0.05)
    assert errors == [] and await _state_is(client, job_id, "active")
    assert observer.attempts == {job_id: [[
        ("handled", '"late"', None), ("finishing", "complete"), ("finished", False),
        ("close",)]]}


@pytest.mark.parametrize(("value", "why"), [
    ({1, 2}, "Object of type set is not JSON serializable"),
    ([float("nan")], "Out of range float values are not JSON compliant"),
])
async def test_a_return_value_json_cannot_hold_fails_the_attempt_saying_what_to_return(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any, value: Any,
        why: str) -> None:
    job_id = await client.add("odd", {}, JobOptions(attempts=2, backoff_delay_ms=0))
    runs: list[str] = []

    async def handler(job: ActiveJob) -> Any:
        runs.append(job.id)
        return value

    errors = await _work(redis_url, queue_name, handler,
                         lambda: _state_is(client, job_id, "failed"), "the failure")
    job = await raw_redis.hgetall(f"bull:{queue_name}:{job_id}")
    assert errors == [] and runs == [job_id] * 2 and job["atm"] == "2"  # retried as any error
    assert job["failedReason"] == (
        f"the handler's return value is not JSON-serialisable ({why}); return only dicts, "
        "lists, strings, finite numbers, booleans and None")
    assert json.loads(job["stacktrace"])[-1].endswith(f"TypeError: {job['failedReason']}")


async def _take_then_stop(redis_url: str, queue_name: str, script: str,
                          hooks: dict[str, Callable[[], bool | None]],
                          options: WorkerOptions = ONE_SLOT,
                          ) -> tuple[list[str], list[BaseException], list[BaseException | None]]:
    """Run a worker through a tap that stops its taking as the first `script` call goes out;
    the handler's runs, the errors and the outages it reported, once its slot has ended."""
    runs: list[str] = []

    async def handler(job: ActiveJob) -> str:
        runs.append(job.id)
        return "done"

    made: list[QueueWorker] = []

    def stop() -> None:
        if tap.called(script) == 1:
            made[0].stop_taking()

    tap = _Tap(redis_url, {script: stop, **hooks})
    errors, outages = await _run_through(
        tap, queue_name, handler, lambda: _true(tap.called(script) >= 1), f"the first {script}",
        options, made=made)
    return runs, errors, outages


@pytest.mark.parametrize("script", ["moveToActive-11", "moveToFinished-14"])
async def test_a_job_whose_fetch_is_under_way_when_taking_stops_goes_back_unstarted(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any,
        script: str) -> None:
    # The stop signal lands while a fetch (moveToActive, or a finish that fetches the next job)
    # is in Redis: its job arrives after the worker stopped taking. It goes back to waiting,
    # unstarted and no attempt counted, for a peer to take at once.
    first = await client.add("first", {}, JobOptions())
    second = await client.add("second", {}, JobOptions())
    runs, errors, _outages = await _take_then_stop(redis_url, queue_name, script, {})
    returned = second if script == "moveToFinished-14" else first
    assert errors == [] and await _state_is(client, returned, "waiting")
    assert runs == ([first] if script == "moveToFinished-14" else [])
    record = await raw_redis.hgetall(f"bull:{queue_name}:{returned}")
    assert record.get("atm", "0") == "0" and f"bull:{queue_name}:{returned}:lock" not in (
        await raw_redis.keys(f"bull:{queue_name}:*:lock"))
    assert await raw_redis.lrange(f"bull:{queue_name}:wait", 0, -1) == (
        [second] if script == "moveToFinished-14" else [second, first])


@pytest.mark.parametrize("fault", ["outage", "lock lost"])
async def test_a_job_that_cannot_go_back_is_reported_and_recovered_once_its_lock_expires(
        redis_url: str, queue_name: str, client: QueueClient, raw_redis: Any,
        fault: str) -> None:
    job_id = await client.add("late", {}, JobOptions())
    sync = redis.Redis.from_url(redis_url)
    back = "moveJobFromActiveToWait-9"

    def outage() -> bool:  # twice: the command connection sends an unanswered call once more
        return True

    def lose_lock() -> None:
        sync.delete(f"bull:{queue_name}:{job_id}:lock")

    short_lock = WorkerOptions(concurrency=1, lock_duration_ms=600, stalled_interval_ms=600)
    runs, errors, outages = await _take_then_stop(
        redis_url, queue_name, "moveToActive-11",
        {back: outage if fault == "outage" else lose_lock}, short_lock)
    sync.close()
    assert runs == []
    if fault == "outage":
        assert errors == [] and [type(error).__name__ for error in outages] == ["ConnectionError"]
    else:
        assert [str(error) for error in errors] == [
            f"Missing lock for job {job_id}. moveJobFromActiveToWait"] and outages == []
    # Never lost: a peer's stalled check (or the return itself) puts it back; it runs once.
    peer_runs: list[str] = []

    async def peer_handler(job: ActiveJob) -> str:
        peer_runs.append(job.id)
        return "done"

    peer = QueueWorker(redis_url, queue_name, "bull", short_lock, peer_handler)
    peer.start(on_error=errors.append)
    try:
        await _until(lambda: _state_is(client, job_id, "completed"), 10, "the job")
    finally:
        await peer.close(5)
    assert peer_runs == [job_id]
