"""The overview's charts as data: jobs finished, wait and run time p50/p95 per time slot, for
the last hour (per minute) or the last day (per ten minutes), for the queue or one task.

Counts for the whole queue come from BullMQ's own metrics (what Node's `getMetrics()` and other
BullMQ dashboards read); per task, and when no worker keeps BullMQ's metrics, from bullpen's
per-minute history (runtime/series.py), which also holds the wait and run time histograms.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from bullpen.adapter import QueueClient, now_ms
from bullpen.runtime.series import (
    BUCKETS,
    FAILED,
    MINUTE_MS,
    OK,
    RUN,
    WAIT,
    Slot,
    percentile,
    read_slots,
    slot_start,
)
from bullpen.web.bullmq_metrics import MinuteCounts, read_metrics


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    label: str
    step_min: int
    points: int


WINDOWS = {"1h": Window("1h", "last hour", 1, 60), "24h": Window("24h", "last 24 hours", 10, 144)}


@dataclass(frozen=True, slots=True)
class Line:
    """One series of a chart: a value per slot, None where there is nothing to show."""

    key: str
    label: str
    values: list[float | None]


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    unit: str  # "jobs" or "ms"
    lines: list[Line]


@dataclass(frozen=True, slots=True)
class History:
    window: Window
    task: str | None
    slot_minutes: list[int]
    counts_source: str  # "bullmq" or "bullpen"
    charts: list[Chart]
    tasks: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window.name, "step_minutes": self.window.step_min,
                "task": self.task, "counts_source": self.counts_source,
                "slot_starts_ms": [minute * MINUTE_MS for minute in self.slot_minutes],
                "charts": [asdict(chart) for chart in self.charts], "tasks": self.tasks}


def window_named(name: str | None) -> Window:
    if not name:
        return WINDOWS["1h"]
    if name not in WINDOWS:
        raise ValueError(f"range={name!r}: expected one of {', '.join(WINDOWS)}")
    return WINDOWS[name]


def _per_slot(counts: MinuteCounts, slot_minutes: list[int], step_min: int) -> list[float | None]:
    return [float(sum(counts.per_minute.get(minute + offset, 0) for offset in range(step_min)))
            for minute in slot_minutes]


def _percentiles(tallies: list[list[int]], offset: int, prefix: str, what: str) -> list[Line]:
    lines = []
    for fraction, name in ((0.5, "p50"), (0.95, "p95")):
        lines.append(Line(f"{prefix}-{name}", f"{what} {name}",
                          [percentile(tally[offset:offset + BUCKETS], fraction)
                           for tally in tallies]))
    return lines


async def history(client: QueueClient, window: Window, task: str | None,
                  known_tasks: list[str]) -> History:
    """The charts for `window`, for one task or (None) the whole queue."""
    now_minute = now_ms() // MINUTE_MS
    first = slot_start(now_minute, window.step_min) - (window.points - 1) * window.step_min
    minutes_back = now_minute - first + 1
    slots, completed, failed = await asyncio.gather(
        read_slots(client.redis, client.keys, window.step_min, first, window.points),
        read_metrics(client, "completed", minutes_back),
        read_metrics(client, "failed", minutes_back))
    slot_minutes = [slot.minute for slot in slots]
    tallies = [slot.merged(task) for slot in slots]
    from_bullmq = task is None and (completed.recorded or failed.recorded)
    if from_bullmq:
        done = [Line("completed", "completed", _per_slot(completed, slot_minutes,
                                                         window.step_min)),
                Line("failed", "failed", _per_slot(failed, slot_minutes, window.step_min))]
    else:
        done = [Line("completed", "completed", [float(tally[OK]) for tally in tallies]),
                Line("failed", "failed", [float(tally[FAILED]) for tally in tallies])]
    per = "minute" if window.step_min == 1 else f"{window.step_min} minutes"
    charts = [
        Chart("finished", f"Jobs finished per {per}", "jobs", done),
        Chart("wait", "Wait time (to start)", "ms",
              _percentiles(tallies, WAIT, "wait", "wait")),
        Chart("run", "Run time", "ms", _percentiles(tallies, RUN, "run", "run")),
    ]
    return History(window, task, slot_minutes, "bullmq" if from_bullmq else "bullpen", charts,
                   _tasks(known_tasks, slots))


def _tasks(known: list[str], slots: list[Slot]) -> list[str]:
    seen = {name for slot in slots for name in slot.tasks}
    return sorted(set(known) | seen)
