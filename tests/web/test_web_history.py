"""The overview's history through the API, from a real worker: outcomes per task (a retried
attempt is not a failure), run times, the per-worker jobs per minute, and the windows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from bullpen.adapter import QueueClient, now_ms
from bullpen.runtime.series import FAILED, MINUTE_MS, OK, RETRIED, read_slots
from bullpen.settings import Settings
from bullpen.web import create_app
from tests.helpers.processes import Proc, start_worker
from tests.helpers.web import wait_for_state, wait_until


@pytest.fixture
def two_attempts(web_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("WORKER_DEFAULT_ATTEMPTS", "2")
    return {**web_env, "WORKER_DEFAULT_ATTEMPTS": "2"}


@pytest.fixture
def retrying_worker(two_attempts: dict[str, str]) -> Iterator[Proc]:
    proc = start_worker(two_attempts)
    yield proc
    proc.kill()


@pytest.fixture
async def api(two_attempts: dict[str, str], client: QueueClient
              ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), client=client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://localhost") as session:
        yield session


async def _enqueue(http: httpx.AsyncClient, task: str, data: dict[str, Any]) -> str:
    response = await http.post("/api/jobs", json={"task": task, "data": data})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _finished(history: dict[str, Any]) -> tuple[float, float]:
    completed, failed = history["charts"][0]["lines"]
    return (sum(value or 0 for value in completed["values"]),
            sum(value or 0 for value in failed["values"]))


async def test_outcomes_run_times_and_windows(api: httpx.AsyncClient, client: QueueClient,
                                              retrying_worker: Proc) -> None:
    started_minute = now_ms() // MINUTE_MS
    done = [await _enqueue(api, "test.record", {"n": n}) for n in range(5)]
    done.append(await _enqueue(api, "test.slow", {"sleep_s": 0.3}))
    delayed = await api.post("/api/jobs", json={"task": "test.record_sync", "data": {},
                                                "delay_ms": 700})
    done.append(str(delayed.json()["id"]))
    flaky = await _enqueue(api, "test.flaky", {"succeed_on": 3})  # retried once, then failed
    give_up = await _enqueue(api, "test.give_up", {})  # unrecoverable: failed, no retry
    for job_id in done:
        await wait_for_state(api, job_id, "completed")
    for job_id in (flaky, give_up):
        await wait_for_state(api, job_id, "failed")

    expected = {"test.record": (5, 0), "test.slow": (1, 0), "test.flaky": (0, 1),
                "test.give_up": (0, 1), "test.record_sync": (1, 0)}

    async def per_task() -> dict[str, tuple[float, float]]:
        return {task: _finished((await api.get(f"/api/history?task={task}")).json())
                for task in expected}

    async def flushed() -> bool:
        return await per_task() == expected

    await wait_until(flushed)  # the worker flushes with its heartbeat (0.5 s here)
    # The whole queue's counts are BullMQ's own metrics, which the worker keeps by default;
    # a retried attempt is not a failure in either.
    queue = (await api.get("/api/history")).json()
    assert queue["counts_source"] == "bullmq" and _finished(queue) == (7, 2)
    slots = await read_slots(client.redis, client.keys, 1, started_minute,
                             now_ms() // MINUTE_MS - started_minute + 1)
    flaky_tally = [sum(slot.merged("test.flaky")[index] for slot in slots)
                   for index in (OK, RETRIED, FAILED)]
    assert flaky_tally == [0, 1, 1]

    slow = (await api.get("/api/history?task=test.slow")).json()
    assert slow["counts_source"] == "bullpen" and slow["task"] == "test.slow"
    [run_p50] = [value for value in slow["charts"][2]["lines"][0]["values"] if value]
    assert run_p50 == pytest.approx(300, rel=0.25)
    # A delayed job waits from when it is due, not from when it was enqueued.
    timed = (await api.get("/api/history?task=test.record_sync")).json()
    [wait_p95] = [value for value in timed["charts"][1]["lines"][1]["values"] if value]
    assert wait_p95 < 300
    day = (await api.get("/api/history?range=24h")).json()
    assert day["step_minutes"] == 10 and len(day["slot_starts_ms"]) == 144
    assert _finished(day) == (7, 2)
    bad = await api.get("/api/history?range=week")
    assert bad.status_code == 400 and "expected one of 1h, 24h" in bad.json()["error"]

    # Each worker's own jobs per minute, in its heartbeat: every attempt counts.
    async def beat_counted() -> bool:
        workers = (await api.get("/api/workers")).json()
        return bool(sum(workers[0]["jobs_per_minute"]) == 10)

    await wait_until(beat_counted)
    [worker] = (await api.get("/api/workers")).json()
    assert len(worker["jobs_per_minute"]) == 60
    assert worker["jobs_per_minute_end_ms"] // MINUTE_MS >= started_minute
