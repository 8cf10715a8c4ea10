"""Per-job bookkeeping made cheap without changing what it produces: stats names, log lines."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import defaultdict
from types import SimpleNamespace

import pytest

from bullpen import logs
from bullpen.runtime.stats import DURATION_BUCKETS_S, TaskStats


def _original_counters(samples: list[tuple[str, float, bool]]) -> dict[str, int]:
    """The counters as the first record() built them, one f-string per bucket per job."""
    counters: dict[str, int] = defaultdict(int)
    for task, duration_s, ok in samples:
        counters[f"{task}|{'processed' if ok else 'failed'}"] += 1
        counters[f"{task}|duration_ms_sum"] += int(duration_s * 1000)
        counters[f"{task}|duration_count"] += 1
        for bound in DURATION_BUCKETS_S:
            if duration_s <= bound:
                counters[f"{task}|le_{bound}"] += 1
    return dict(counters)


def test_stats_tallies_fold_into_the_original_counter_names() -> None:
    samples = [("a", 0.0, True), ("a", 0.005, True), ("b", 0.3, False), ("a", 70.0, True),
               ("b", 400.0, True), ("a", 2.5, False), ("b", 0.0101, True)]
    stats = TaskStats()
    for task, duration_s, ok in samples:
        job = SimpleNamespace(name=task, scheduler_id=None, attempts_made=0, timestamp_ms=0,
                              delay_ms=0, raw_opts={})
        stats.record(job, 0, duration_s, ok)  # type: ignore[arg-type]
    stats._fold_tallies()
    assert dict(stats.counters) == _original_counters(samples)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    logs.configure("INFO")
    return stream


async def test_lines_logged_on_the_loop_are_written_by_the_end_of_the_turn(
        captured: io.StringIO) -> None:
    log = logs.get("worker")
    log.info("Processing job %s of type %s", "1", "a.task")
    log.info("Processing job %s of type %s", "2", "a.task")
    assert captured.getvalue() == ""  # held for this turn's single write
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    lines = captured.getvalue().splitlines()
    assert [line.split("INFO", 1)[1].strip() for line in lines] == [
        "[worker] Processing job 1 of type a.task", "[worker] Processing job 2 of type a.task"]


def test_lines_logged_off_the_loop_are_written_at_once_and_flush_drains(
        captured: io.StringIO) -> None:
    log = logs.get("worker")
    log.warning("from a thread or start-up")
    assert "[worker] from a thread or start-up" in captured.getvalue()
    logging.getLogger("bullpen").handlers[0].flush()
