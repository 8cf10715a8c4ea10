"""Isolated tasks in a real worker: a GIL-holding handler longer than the lock runs once, logs,
progress, results and errors reach the job, a crashing child fails its attempt and is replaced."""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time

from bullpen.adapter import JobOptions, QueueClient
from tests.helpers.processes import recorded_runs, running_worker

HOLD_S = 3.5  # longer than the test lock (WORKER_LOCK_DURATION_MS=2000)


def _backtrack(n: int) -> float:
    started = time.perf_counter()
    re.match(r"(a+)+$", "a" * n + "b")
    return time.perf_counter() - started


def _input_size_for(seconds: float) -> int:
    """The input size that keeps `re` backtracking for about `seconds` (each character doubles
    the time)."""
    n = 16
    while (spent := _backtrack(n)) < 0.05:
        n += 1
    return n + math.ceil(math.log2(seconds / spent))


def _ticks_while_backtracking(n: int) -> tuple[int, float]:
    """How often a 10 ms sleeper wakes while another thread backtracks: ~0 if the GIL is held."""
    ticks = 0
    done = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            time.sleep(0.01)
            ticks += 1

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.05)
    before = ticks
    spent = _backtrack(n)
    after = ticks
    done.set()
    thread.join()
    return after - before, spent


async def _finished(client: QueueClient, job_id: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        record = await client.get_job(job_id)
        if record is not None and record.state in ("completed", "failed"):
            return record.state
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.05)


def test_the_test_handler_really_holds_the_gil() -> None:
    ticks, spent = _ticks_while_backtracking(_input_size_for(0.5))
    assert spent > 0.3
    assert ticks <= 2, f"a 10 ms sleeper woke {ticks} times in {spent:.2f} s of backtracking"


async def test_a_gil_holding_handler_longer_than_the_lock_runs_once_and_completes(
        app_env: dict[str, str], client: QueueClient) -> None:
    n = _input_size_for(HOLD_S)
    with running_worker(app_env) as worker:
        job_id = await client.add("test.hold_gil", {"n": n}, JobOptions(attempts=2))
        assert await _finished(client, job_id, timeout_s=HOLD_S * 8) == "completed"
    runs = [run for run in recorded_runs(client.name) if run["job_id"] == job_id]
    assert len(runs) == 1
    assert float(str(runs[0]["held_s"])) > 2.0  # longer than the lock
    record = await client.get_job(job_id)
    assert record is not None and record.attempts_made <= 1 and record.progress == 100
    assert await client.get_logs(job_id) == ["holding the GIL", "released"]
    assert "stalled" not in worker.output and "Missing lock" not in worker.output


async def test_results_errors_and_logs_of_isolated_tasks_reach_the_job(
        app_env: dict[str, str], client: QueueClient) -> None:
    with running_worker(app_env):
        ok = await client.add("test.isolated", {"x": "é"}, JobOptions(attempts=1))
        bad = await client.add("test.isolated", {"fail": "nope"}, JobOptions(attempts=1))
        assert await _finished(client, ok) == "completed"
        assert await _finished(client, bad) == "failed"
    done, failed = await client.get_job(ok), await client.get_job(bad)
    assert done is not None and done.return_value["echo"] == {"x": "é"}
    assert await client.get_logs(ok) == ["attempt 1"]
    assert failed is not None and failed.failed_reason == "asked to fail: nope"
    assert "ValueError: asked to fail: nope" in "".join(failed.stacktrace)


async def test_a_crashing_child_fails_the_attempt_clearly_and_is_replaced(
        app_env: dict[str, str], client: QueueClient) -> None:
    with running_worker(app_env) as worker:
        exited = await client.add("test.isolated", {"exit": 3}, JobOptions(attempts=2))
        segfault = await client.add("test.isolated", {"segfault": True}, JobOptions(attempts=1))
        assert await _finished(client, exited) == "failed"
        assert await _finished(client, segfault) == "failed"
        after = [await client.add("test.isolated", {"i": i}, JobOptions(attempts=1))
                 for i in range(5)]
        for job_id in after:
            assert await _finished(client, job_id) == "completed"
    record = await client.get_job(exited)
    assert record is not None and record.attempts_made == 2  # each attempt failed on its own
    assert re.match(r"isolated task 'test.isolated': its process \(pid \d+\) exited with code 3 "
                    rf"while running job {exited}; this attempt failed", record.failed_reason or "")
    crashed = await client.get_job(segfault)
    assert crashed is not None and "was killed by SIGSEGV" in (crashed.failed_reason or "")
    pids = [(await client.get_job(job_id)).return_value["pid"] for job_id in after]  # type: ignore[union-attr]
    # Replaced after max_jobs_per_child=2 jobs: no process ran more than two.
    assert max(pids.count(pid) for pid in pids) <= 2
    assert "Traceback" not in worker.output
