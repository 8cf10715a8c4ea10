"""One rule for "attempt n of m" on every page, the log and the API, and which attempt each
stored stack trace came from; checked on a manual retry of a job that used its attempts."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from bullpen.adapter import JobRecord
from bullpen.web.job_view import attempt_of, trace_attempts
from tests.helpers.processes import Proc
from tests.helpers.web import wait_for_state

BASE = JobRecord(id="7", name="t", data={}, attempts_made=0, attempts_allowed=3, timestamp_ms=1,
                 processed_on_ms=None, finished_on_ms=None, delay_ms=0, failed_reason=None,
                 stacktrace=[], return_value=None, progress=None, scheduler_id=None)


@pytest.mark.parametrize(("state", "made", "traces", "phrase", "numbers"), [
    ("waiting", 0, 0, "attempt 1 of 3, not started", []),
    ("active", 0, 0, "running attempt 1 of 3", []),
    ("delayed", 1, 1, "attempt 2 of 3 next", [1]),
    ("active", 2, 2, "running attempt 3 of 3", [1, 2]),
    ("completed", 2, 1, "completed on attempt 2 of 3", [1]),
    ("failed", 3, 3, "failed on attempt 3 of 3", [1, 2, 3]),
    # A manual retry of an exhausted job grants one more attempt: the last.
    ("waiting", 3, 3, "attempt 4 of 4 next", [1, 2, 3]),
    ("failed", 4, 4, "failed on attempt 4 of 4", [1, 2, 3, 4]),
    # Traces trimmed by a limit: the newest ones are still numbered right.
    ("failed", 5, 2, "failed on attempt 5 of 5", [4, 5]),
    # Counters reset by hand: no number rather than a wrong one.
    ("failed", 1, 3, "failed on attempt 1 of 3", [None, None, None]),
])
def test_attempt_phrase_and_trace_numbers(state: str, made: int, traces: int, phrase: str,
                                          numbers: list[int | None]) -> None:
    job = dataclasses.replace(BASE, state=state, attempts_made=made,
                              stacktrace=["Traceback"] * traces)
    assert attempt_of(job).phrase == phrase
    assert trace_attempts(job) == numbers


async def test_a_manual_retry_past_the_attempts_reads_the_same_everywhere(
        http: httpx.AsyncClient, worker: Proc) -> None:
    created = await http.post("/api/jobs", json={"task": "test.flaky",
                                                 "data": {"succeed_on": 9}})
    job_id = created.json()["id"]
    await wait_for_state(http, job_id, "failed")
    await http.post(f"/api/jobs/{job_id}/retry", json={})
    await wait_for_state(http, job_id, "failed")
    detail = (await http.get(f"/api/jobs/{job_id}")).json()
    assert detail["attempt"] == {"number": 2, "of": 2, "text": "failed on attempt 2 of 2"}
    assert detail["trace_attempts"] == [1, 2]
    page = (await http.get(f"/job/{job_id}")).text
    assert "failed on attempt 2 of 2" in page and "made /" not in page
    assert page.index("Stack trace of attempt 2") < page.index("Stack trace of attempt 1")
    listed = (await http.get("/jobs/failed")).text
    assert 'title="failed on attempt 2 of 2">2 of 2</td>' in listed
    worker.wait_for(f"Job {job_id} of type test.flaky failed (attempt 2 of 2)")
