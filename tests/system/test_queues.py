"""Several queues: one worker process on two queues, routing by task from every producer,
per-queue schedules, a worker on one queue only, and doctor, metrics, probes and the dashboard
per queue. Real processes on the test Redis; per-job runs counted from Redis."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bullpen import SyncClient
from bullpen.adapter import JobOptions, QueueClient
from bullpen.runtime.heartbeat import alive_workers
from tests.helpers.processes import Proc, eventually, recorded_runs, run_cli
from tests.helpers.web import running_web

TOKEN = "queues-test-token-k3Jq9vXw2LpT7mZr5NbY8cHd4GfS6aQe"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
DIRTY = ("Traceback", "Worker error", "Missing lock", "Task exception was never retrieved")


@pytest.fixture
def queues(app_env: dict[str, str]) -> tuple[str, str]:
    """(fast, slow): the test's default queue and one named after it."""
    fast = app_env["WORKER_DEFAULT_QUEUE"]
    return fast, f"{fast}-slow"


@pytest.fixture
def slow_env(app_env: dict[str, str], queues: tuple[str, str]) -> dict[str, str]:
    """The sample app with `test.span` and `test.give_up` declared on the slow queue."""
    return {**app_env, "SAMPLE_TASK_QUEUES": json.dumps(
        {"test.span": queues[1], "test.give_up": queues[1]})}


@pytest.fixture
async def clients(redis_url: str, queues: tuple[str, str]
                  ) -> AsyncIterator[tuple[QueueClient, QueueClient]]:
    fast, slow = QueueClient(redis_url, queues[0]), QueueClient(redis_url, queues[1])
    yield fast, slow
    await fast.close()
    await slow.close()


STARTED: list[Proc] = []


@pytest.fixture(autouse=True)
def no_leftover_workers() -> Iterator[None]:
    """Workers a failed test left running are killed (a passing test stops its own)."""
    yield
    for proc in STARTED:
        proc.kill()
    STARTED.clear()


def start(env: dict[str, str], *queue_args: str) -> Proc:
    """`bullpen worker --queue …` once every queue it serves says it is ready."""
    args = [part for spec in queue_args for part in ("--queue", spec)]
    proc = Proc(["worker", *args], env)
    STARTED.append(proc)
    for spec in queue_args:
        proc.wait_for(f"ready to process jobs from queue: {spec.partition('=')[0]}", 30)
    return proc


def stop(proc: Proc) -> None:
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.output
    assert not [line for line in proc.lines if any(text in line for text in DIRTY)], proc.output


async def finished(client: QueueClient, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while (await client.get_counts(["completed"]))["completed"] < count:
        assert time.monotonic() < deadline, await client.get_counts()
        await asyncio.sleep(0.05)


def spans(queue: str) -> dict[str, list[dict[str, Any]]]:
    """`test.span` runs per job id (start and end events), as recorded in Redis."""
    by_job: dict[str, list[dict[str, Any]]] = {}
    for run in recorded_runs(queue):
        if "event" in run and "enqueued_ms" in run:
            by_job.setdefault(str(run["job_id"]), []).append(run)
    return by_job


def max_overlap(runs: list[dict[str, Any]]) -> int:
    # Ends sort before starts at the same instant: a slot freed and taken is not an overlap.
    events = sorted((run["at_ms"], 0 if run["event"] == "end" else 1) for run in runs)
    running = highest = 0
    for _at, kind in events:
        running += 1 if kind else -1
        highest = max(highest, running)
    return highest


async def test_one_worker_runs_two_queues_each_at_its_own_concurrency(
        slow_env: dict[str, str], queues: tuple[str, str],
        clients: tuple[QueueClient, QueueClient]) -> None:
    fast, slow = queues
    ids = {client.name: [await client.add("test.span", {"block_s": 0.4, "n": n}, JobOptions())
                         for n in range(6)] for client in clients}
    worker = start({**slow_env, "WORKER_CONCURRENCY": "3"}, fast, f"{slow}=1")
    try:
        for client in clients:
            await finished(client, 6)
    finally:
        stop(worker)
    runs = spans(fast)
    for client in clients:
        for n, job_id in enumerate(ids[client.name]):
            record = await client.get_job(job_id)
            assert record is not None and record.return_value == {"queue": client.name, "n": n}
            assert [run["event"] for run in runs[job_id] if run["queue"] == client.name] == [
                "start", "end"], runs[job_id]
    by_queue = {queue: [run for found in runs.values() for run in found
                        if run["queue"] == queue] for queue in queues}
    assert max_overlap(by_queue[fast]) == 3  # WORKER_CONCURRENCY
    assert max_overlap(by_queue[slow]) == 1  # --queue <slow>=1


LIMIT_MAX, LIMIT_WINDOW_MS, LIMITED_JOBS = 2, 1000, 6


async def test_each_queue_has_its_own_rate_limit(
        slow_env: dict[str, str], queues: tuple[str, str],
        clients: tuple[QueueClient, QueueClient]) -> None:
    env = {**slow_env, "WORKER_LIMITER_MAX": str(LIMIT_MAX),
           "WORKER_LIMITER_DURATION": str(LIMIT_WINDOW_MS)}
    for client in clients:
        for n in range(LIMITED_JOBS):
            await client.add("test.span", {"n": n}, JobOptions())
    worker = start(env, *queues)
    try:
        for client in clients:
            await finished(client, LIMITED_JOBS)
    finally:
        stop(worker)
    starts = {queue: sorted(run["at_ms"] for found in spans(queues[0]).values()
                            for run in found if run["queue"] == queue and run["event"] == "start")
              for queue in queues}
    for queue, times in starts.items():
        assert len(times) == LIMITED_JOBS
        # BullMQ counts fixed windows: a start and the one 2 x max later are in windows at
        # least one whole window apart (less a little clock jitter between the processes).
        reach = 2 * LIMIT_MAX
        assert all(later - at >= LIMIT_WINDOW_MS - 50
                   for at, later in zip(times, times[reach:], strict=False)), (queue, times)
    # One limiter shared by both queues would need 12 / 2 = 6 windows: at least 4 between the
    # first and the last start. Two limiters run both queues' windows side by side.
    everything = sorted(at for times in starts.values() for at in times)
    shared_minimum_ms = (2 * LIMITED_JOBS // LIMIT_MAX - 2) * LIMIT_WINDOW_MS
    assert everything[-1] - everything[0] < shared_minimum_ms, starts


SLOW_BLOCK_S = 3.0
# A fast job must start well within one slow job's run: sharing a pool (or a slot) with the
# slow queue it would wait for the slow job to end, SLOW_BLOCK_S later.
FAST_LATENESS_BOUND_MS = SLOW_BLOCK_S * 1000 / 3


async def test_a_saturated_slow_queue_does_not_delay_the_fast_one(
        slow_env: dict[str, str], queues: tuple[str, str],
        clients: tuple[QueueClient, QueueClient]) -> None:
    fast, slow = queues
    fast_client, slow_client = clients
    worker = start(slow_env, f"{fast}=2", f"{slow}=1")
    try:
        slow_ids = [await slow_client.add("test.span", {"block_s": SLOW_BLOCK_S}, JobOptions())
                    for _ in range(2)]
        eventually(lambda: slow_ids[0] in spans(fast), timeout=15)
        fast_ids = []
        for n in range(8):
            fast_ids.append(await fast_client.add("test.span", {"n": n}, JobOptions()))
            await asyncio.sleep(0.15)
        await finished(fast_client, 8)
        await finished(slow_client, 2, timeout_s=SLOW_BLOCK_S * 4)
    finally:
        stop(worker)
    runs = spans(fast)
    first_slow = {run["event"]: run["at_ms"] for run in runs[slow_ids[0]]}
    second_slow = {run["event"]: run["at_ms"] for run in runs[slow_ids[1]]}
    assert second_slow["start"] >= first_slow["end"]  # the slow queue was saturated
    for job_id in fast_ids:
        [started, _ended] = [run for run in runs[job_id] if run["queue"] == fast]
        lateness_ms = started["at_ms"] - started["enqueued_ms"]
        assert lateness_ms < FAST_LATENESS_BOUND_MS, (job_id, lateness_ms)
        assert first_slow["start"] < started["at_ms"] < second_slow["end"]


@pytest.fixture
def routes_here(slow_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sample app's tasks, imported in this process with the slow queue's routes."""
    import sample_app.tasks  # noqa: PLC0415 - the sample app is on sys.path only in tests

    monkeypatch.setenv("SAMPLE_TASK_QUEUES", slow_env["SAMPLE_TASK_QUEUES"])
    importlib.reload(sample_app.tasks)
    yield
    monkeypatch.delenv("SAMPLE_TASK_QUEUES")
    importlib.reload(sample_app.tasks)  # later tests in this process route nothing


@pytest.mark.usefixtures("routes_here")
async def test_cli_client_and_api_route_each_task_to_its_queue(
        slow_env: dict[str, str], queues: tuple[str, str],
        clients: tuple[QueueClient, QueueClient]) -> None:
    fast, slow = queues
    fast_client, slow_client = clients
    env = {**slow_env, "WEB_AUTH_TOKEN": TOKEN}
    routed = run_cli(["enqueue", "test.span", "--data", '{"n": 1}'], env)
    assert routed.returncode == 0 and f"on queue {slow}" in routed.stderr, routed.stderr
    explicit = run_cli(["enqueue", "test.span", "--queue", fast, "--data", '{"n": 2}'], env)
    plain = run_cli(["enqueue", "test.record"], env)
    client = SyncClient()
    try:
        from_client = client.enqueue("test.span", {"n": 3})
        to_fast = client.enqueue("test.span", {"n": 4}, queue=fast)
    finally:
        client.close()
    assert (from_client.queue, to_fast.queue) == (slow, fast)
    from_api = _enqueue_through_the_api(env, slow)
    expected = {slow: [routed.stdout.strip(), from_client.id, from_api],
                fast: [explicit.stdout.strip(), plain.stdout.strip(), to_fast.id]}
    worker = start(slow_env, fast, slow)
    try:
        await finished(slow_client, 3)
        await finished(fast_client, 3)
    finally:
        stop(worker)
    runs = spans(fast)
    for queue_client in clients:
        for job_id in expected[queue_client.name]:
            record = await queue_client.get_job(job_id)
            assert record is not None and record.state == "completed", (queue_client.name,
                                                                        job_id)
            if record.name == "test.span":
                assert record.return_value["queue"] == queue_client.name
                assert len([run for run in runs[job_id] if run["queue"] == queue_client.name
                            and run["event"] == "start"]) == 1
    recorded = [run for run in recorded_runs(fast)
                if run.get("job_id") == expected[fast][1] and "enqueued_ms" not in run]
    assert [run["queue"] for run in recorded] == [fast]  # test.record: once, on its queue


def _enqueue_through_the_api(env: dict[str, str], slow: str) -> str:
    with running_web(env) as (_, base), httpx.Client(base_url=base, headers=ADMIN) as http:
        answer = http.post("/api/jobs", json={"task": "test.span", "data": {"n": 5}})
        assert answer.status_code == 201 and answer.json()["queue"] == slow, answer.text
        job_id = str(answer.json()["id"])
        assert http.get(f"/q/{slow}/api/jobs/{job_id}").json()["data"] == {"n": 5}
        assert http.get(f"/api/jobs/{job_id}?queue={slow}").json()["id"] == job_id
        return job_id


TICK_MS = 400


def _ticks(queue: str, on: str) -> dict[str, int]:
    counted: dict[str, int] = {}
    for run in recorded_runs(queue):
        if run.get("scheduler") == "tick" and run.get("queue") == on:
            counted[str(run["job_id"])] = counted.get(str(run["job_id"]), 0) + 1
    return counted


async def test_a_schedule_registers_and_runs_on_its_queue_and_moves_with_it(
        app_env: dict[str, str], queues: tuple[str, str],
        clients: tuple[QueueClient, QueueClient], redis_url: str) -> None:
    fast, slow = queues
    fast_client, slow_client = clients
    tick = {"name": "tick", "task_name": "test.record", "every_ms": TICK_MS}
    on_slow = {**app_env, "SAMPLE_SCHEDULES": json.dumps([tick | {"queue": slow}])}
    only_fast = start(on_slow, fast)
    stop(only_fast)
    assert await slow_client.get_schedulers() == []  # nobody serves the slow queue yet
    assert "tick" not in {record.id for record in await fast_client.get_schedulers()}
    assert _statuses(on_slow)[("tick", slow)] == "missing"
    both = start(on_slow, fast, slow)
    both.wait_for(f"Scheduled job registered: tick (every {TICK_MS} ms) on queue {slow}")
    eventually(lambda: len(_ticks(fast, slow)) >= 3, timeout=15)
    stop(both)
    assert set(_ticks(fast, slow).values()) == {1}
    assert _ticks(fast, fast) == {}
    assert "tick" in await slow_client.redis.hgetall(slow_client.keys.owned_schedules)
    # Declared on the default queue now: the worker moves it, each queue reconciling its own.
    moved = start({**app_env, "SAMPLE_SCHEDULES": json.dumps([tick])}, fast, slow)
    moved.wait_for(f"Scheduled job removed: tick (no longer declared on queue {slow})")
    eventually(lambda: len(_ticks(fast, fast)) >= 2, timeout=15)
    stop(moved)
    assert await slow_client.get_schedulers() == []
    assert "tick" not in await slow_client.redis.hgetall(slow_client.keys.owned_schedules)
    assert "tick" in {record.id for record in await fast_client.get_schedulers()}
    assert set(_ticks(fast, fast).values()) == {1}
    assert _statuses({**app_env, "SAMPLE_SCHEDULES": json.dumps([tick])})[
        ("tick", fast)] == "registered"


def _statuses(env: dict[str, str]) -> dict[tuple[str, str], str]:
    """`bullpen schedules --json`: (name, queue) → status."""
    shown = run_cli(["schedules", "--json"], env)
    assert shown.returncode == 0, shown.stderr
    return {(row["name"], row["queue"]): row["status"] for row in json.loads(shown.stdout)}


async def test_a_second_worker_on_the_slow_queue_only_shares_its_jobs_not_the_fast_ones(
        slow_env: dict[str, str], queues: tuple[str, str],
        clients: tuple[QueueClient, QueueClient]) -> None:
    fast, slow = queues
    fast_client, slow_client = clients
    both = start(slow_env, fast, slow)
    slow_only = start({**slow_env, "WORKER_CONCURRENCY": "2"}, slow)
    try:
        ids = {client.name: [await client.add("test.span", {"block_s": 0.1, "n": n},
                                              JobOptions()) for n in range(16)]
               for client in clients}
        await finished(fast_client, 16)
        await finished(slow_client, 16)
        fast_workers = await alive_workers(fast_client)
        slow_workers = await alive_workers(slow_client)
        # Restarted, the slow-only worker comes back on its queue alone.
        stop(slow_only)
        slow_only = start({**slow_env, "WORKER_CONCURRENCY": "2"}, slow)
        more = [await slow_client.add("test.span", {"block_s": 0.1}, JobOptions())
                for _ in range(6)]
        await finished(slow_client, 22)
    finally:
        stop(slow_only)
        stop(both)
    assert len(fast_workers) == 1 and len(slow_workers) == 2
    assert sorted(info.concurrency for info in slow_workers) == [2, 5]
    runs = spans(fast)
    starts = {job_id: [run for run in found if run["event"] == "start"]
              for job_id, found in runs.items()}
    for queue in queues:
        for job_id in ids[queue] + (more if queue == slow else []):
            assert [run["queue"] for run in starts[job_id] if run["queue"] == queue] == [queue]
    ran_fast = {run["worker"] for job_id in ids[fast] for run in starts[job_id]
                if run["queue"] == fast}
    ran_slow = {run["worker"] for job_id in ids[slow] for run in starts[job_id]
                if run["queue"] == slow}
    assert ran_fast == {fast_workers[0].id}
    assert ran_slow == {info.id for info in slow_workers}


def _samples(text: str) -> list[Any]:
    return [sample for family in text_string_to_metric_families(text)
            for sample in family.samples]


async def test_doctor_probes_metrics_and_dashboard_see_every_queue(
        slow_env: dict[str, str], queues: tuple[str, str],
        clients: tuple[QueueClient, QueueClient]) -> None:
    fast, slow = queues
    fast_client, slow_client = clients
    env = {**slow_env, "WEB_AUTH_TOKEN": TOKEN, "WORKER_DEFAULT_ATTEMPTS": "1"}
    # Job 1 on each queue: one completes, the other fails for good.
    same_id = [await fast_client.add("test.record", {}, JobOptions()),
               await slow_client.add("test.give_up", {}, JobOptions(attempts=1))]
    assert same_id[0] == same_id[1]
    fast_only = start(env, fast)
    try:
        doctor = json.loads(run_cli(["doctor", "--json"], env).stdout)
        checks = {check["name"]: check for check in doctor["checks"]}
        assert checks[f"workers ({fast})"]["status"] == "ok"
        assert checks[f"workers ({slow})"]["status"] == "fail"
        assert f"bullpen worker --queue {slow}" in checks[f"workers ({slow})"]["fix"]
        ready = _readiness(env)
        assert ready.status_code == 503
        assert f"queue {slow}: no worker heartbeat" in ready.json()["checks"][
            "worker_heartbeat"]["reason"]
    finally:
        stop(fast_only)
    worker = start(env, fast, slow)
    try:
        await finished(fast_client, 1)
        async def failed_once() -> bool:
            return (await slow_client.get_counts(["failed"]))["failed"] == 1

        await until(failed_once)
        await asyncio.sleep(1.5)  # counters reach Redis with the next heartbeat (0.5 s)
        doctor = json.loads(run_cli(["doctor", "--json"], env).stdout)
        checks = {check["name"]: check for check in doctor["checks"]}
        assert checks[f"workers ({slow})"]["status"] == "ok"
        assert checks[f"failed jobs ({slow})"]["status"] == "fail"
        assert checks[f"failed jobs ({fast})"]["status"] == "ok"
        with running_web(env) as (_, base):
            assert _readiness(env, base).status_code == 200
            _check_metrics(base, fast, slow)
            _check_dashboard(base, fast, slow, same_id[0])
        async def retried_once() -> bool:
            record = await slow_client.get_job(same_id[0])
            return record is not None and record.attempts_made == 2 and record.state == "failed"

        await until(retried_once)
    finally:
        stop(worker)
    record = await fast_client.get_job(same_id[0])
    assert record is not None and record.state == "completed" and record.attempts_made == 1


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _readiness(env: dict[str, str], base: str | None = None) -> httpx.Response:
    if base is not None:
        return httpx.get(f"{base}/readyz")
    with running_web(env) as (_, started):
        return httpx.get(f"{started}/readyz")


def _check_metrics(base: str, fast: str, slow: str) -> None:
    samples = _samples(httpx.get(f"{base}/metrics", headers=ADMIN).text)
    assert all("queue" in sample.labels for sample in samples)
    jobs = {(sample.labels["queue"], sample.labels["state"]): sample.value
            for sample in samples if sample.name == "bullpen_jobs"}
    assert jobs[(fast, "completed")] == 1 and jobs[(slow, "failed")] == 1
    assert jobs[(fast, "failed")] == 0 and jobs[(slow, "completed")] == 0
    failed = {(sample.labels["queue"], sample.labels["task"]): sample.value
              for sample in samples if sample.name == "bullpen_jobs_failed_total"}
    assert failed[(slow, "test.give_up")] == 1
    workers = {sample.labels["queue"]: sample.value for sample in samples
               if sample.name == "bullpen_workers_alive"}
    assert workers == {fast: 1, slow: 1}


def _check_dashboard(base: str, fast: str, slow: str, job_id: str) -> None:
    with httpx.Client(base_url=base, headers=ADMIN) as http:
        home = http.get("/").text
        assert f'href="/q/{slow}/"' in home and 'href="/"' in home  # the queue picker
        page = http.get(f"/q/{slow}/jobs/failed").text
        assert f'href="/q/{slow}/job/{job_id}"' in page and "test.give_up" in page
        assert f'href="/job/{job_id}"' not in http.get("/jobs/failed").text
        assert f'href="/job/{job_id}"' in http.get("/jobs/completed").text
        detail = http.get(f"/q/{slow}/job/{job_id}").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', detail)
        assert token is not None
        assert f'action="/q/{slow}/job/{job_id}/retry"' in detail
        # The retry form of the slow queue's job 1 retries that job, not the fast queue's 1.
        retried = http.post(f"/q/{slow}/job/{job_id}/retry",
                            data={"csrf_token": token.group(1)})
        assert retried.status_code == 303, retried.text
        assert retried.headers["location"] == f"/q/{slow}/"  # back on the same queue


async def test_processes_and_dev_pass_their_queues_to_each_child(
        slow_env: dict[str, str], queues: tuple[str, str],
        clients: tuple[QueueClient, QueueClient]) -> None:
    fast, slow = queues
    fast_client, slow_client = clients
    untouched = await fast_client.add("test.span", {}, JobOptions())
    ready = f"ready to process jobs from queue: {slow}"
    for done, (mode, children) in enumerate(((["--processes", "2"], 2), (["--dev"], 1)),
                                            start=1):
        proc = Proc(["worker", *mode, "--queue", f"{slow}=1"], slow_env)
        STARTED.append(proc)
        try:
            eventually(lambda proc=proc, children=children:  # type: ignore[misc]
                       proc.output.count(ready) == children, timeout=30)
            assert not [line for line in proc.lines if line.endswith(f"from queue: {fast}")]
            await slow_client.add("test.span", {}, JobOptions())
            await finished(slow_client, done)
        finally:
            proc.signal(signal.SIGTERM)
            assert proc.wait(30) == 0, proc.output
    record = await fast_client.get_job(untouched)
    assert record is not None and record.state == "waiting"
