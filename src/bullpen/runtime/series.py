"""Bounded per-minute history of what BullMQ's metrics do not record: outcomes, wait and run
time histograms per task, counted in memory by the worker and flushed with its stats.

A time slot covers a minute (kept for the last hour) or ten minutes (kept for the last day).
Each task with jobs in it has a small hash of counter → count: `ok`, `failed` (no retry left),
`retried`, and the histogram buckets `w<i>` (wait: enqueue, or due time, to start) and `r<i>`
(run time); the slot's own hash names those tasks. Small hashes keep Redis's compact encoding.
Bucket i holds durations in [0.1·2^(i/2), 0.1·2^((i+1)/2)) ms: a percentile read back lies in
the right bucket, and interpolation inside it brings it within a few percent.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bullpen.keyspace import Keyspace

MINUTE_MS = 60_000
BUCKETS = 52  # bucket 51 starts at ~79 min and holds everything longer
FINE_STEP_MIN, COARSE_STEP_MIN = 1, 10
# A slot is written until about a minute after it ends (the last flush); keep it just past
# the window it is shown in.
FINE_KEEP_S = 62 * 60
COARSE_KEEP_S = 24 * 3600 + 20 * 60
MAX_TASKS = 50
OTHER_TASK = "(other)"

OK, FAILED, RETRIED = 0, 1, 2
WAIT = 3
RUN = WAIT + BUCKETS
WIDTH = RUN + BUCKETS
SUFFIXES = ("ok", "failed", "retried", *(f"w{i}" for i in range(BUCKETS)),
            *(f"r{i}" for i in range(BUCKETS)))
SUFFIX_INDEX = {suffix: index for index, suffix in enumerate(SUFFIXES)}


def bucket_bounds(index: int) -> tuple[float, float]:
    """The [low, high) milliseconds bucket `index` counts."""
    low = 0.0 if index == 0 else 0.1 * 2 ** (index / 2)
    return low, 0.1 * 2 ** ((index + 1) / 2)


# A bisect over the upper bounds is the cheapest way to a bucket (one C call per duration).
_UPPERS = tuple(bucket_bounds(index)[1] for index in range(BUCKETS - 1))


def bucket_of(ms: float) -> int:
    """The histogram bucket of a duration in milliseconds."""
    return bisect_right(_UPPERS, ms)


def percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """The `fraction` quantile (0.5, 0.95) in ms, interpolated inside its bucket; None if empty."""
    total = sum(histogram)
    if not total:
        return None
    rank, seen = fraction * total, 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low, high = bucket_bounds(index)
            share = (rank - seen) / count
            if low == 0.0:
                return high * share
            return float(low * (high / low) ** share)
        seen += count
    return bucket_bounds(len(histogram) - 1)[1]


def slot_start(minute: int, step_min: int) -> int:
    return minute - minute % step_min


class RecentMinutes:
    """Jobs one worker finished in each of the last 60 minutes: a ring of counters."""

    __slots__ = ("_counts", "_minutes")
    SIZE = 60

    def __init__(self) -> None:
        self._counts = [0] * self.SIZE
        self._minutes = [-1] * self.SIZE

    def add(self, minute: int, count: int) -> None:
        index = minute % self.SIZE
        if self._minutes[index] != minute:
            self._minutes[index] = minute
            self._counts[index] = 0
        self._counts[index] += count

    def last_hour(self, now_minute: int) -> list[int]:
        """Counts for the 60 minutes ending with `now_minute`, oldest first."""
        return [self._counts[m % self.SIZE] if self._minutes[m % self.SIZE] == m else 0
                for m in range(now_minute - self.SIZE + 1, now_minute + 1)]


class MinuteSeries:
    """One worker's counts since its last flush, per minute (the one each attempt finished in)
    and task, and its own jobs per minute over the last hour."""

    __slots__ = ("_current", "_known", "_minute", "_open", "recent")

    def __init__(self, known_tasks: Iterable[str] | None = None) -> None:
        # Each slot holds at most MAX_TASKS names (the registered ones first, then the first
        # seen); the rest count as OTHER_TASK, so stray names cannot grow a queue's history.
        self._known: set[str] | None = set(list(known_tasks)[:MAX_TASKS]) \
            if known_tasks is not None else None
        self._open: dict[int, dict[str, list[int]]] = {}
        self._minute = -1
        self._current: dict[str, list[int]] = {}
        self.recent = RecentMinutes()

    def record(self, task: str, finished_ms: int, wait_ms: float | None, run_ms: float,
               outcome: int) -> None:
        """Count one finished attempt: `outcome` is OK, FAILED or RETRIED."""
        minute = finished_ms // MINUTE_MS
        if minute != self._minute:
            self._minute = minute
            self._current = self._open.setdefault(minute, {})
        tally = self._current.get(task)
        if tally is None:
            tally = self._current[task] = [0] * WIDTH
        tally[outcome] += 1
        if wait_ms is not None:
            tally[WAIT + bisect_right(_UPPERS, wait_ms)] += 1
        tally[RUN + bisect_right(_UPPERS, run_ms)] += 1

    def last_hour(self, now_minute: int) -> list[int]:
        """This worker's jobs per minute, flushed or not, for the hour up to `now_minute`."""
        counts = self.recent.last_hour(now_minute)
        first = now_minute - RecentMinutes.SIZE + 1
        for minute, tasks in self._open.items():
            if first <= minute <= now_minute:
                counts[minute - first] += sum(sum(tally[:WAIT]) for tally in tasks.values())
        return counts

    def _name(self, task: str) -> str:
        if self._known is None:
            self._known = set()
        if task in self._known:
            return task
        if len(self._known) < MAX_TASKS and task != OTHER_TASK:
            self._known.add(task)
            return task
        return OTHER_TASK

    def drain(self) -> dict[tuple[int, int, str], list[int]]:
        """The counts to write, per (step, slot start minute, task name), and forget them."""
        merged: dict[tuple[int, int, str], list[int]] = {}
        for minute, tasks in self._open.items():
            for task, tally in tasks.items():
                self.recent.add(minute, sum(tally[:WAIT]))
                name = self._name(task)
                for step in (FINE_STEP_MIN, COARSE_STEP_MIN):
                    into = merged.setdefault((step, slot_start(minute, step), name),
                                             [0] * WIDTH)
                    for index, count in enumerate(tally):
                        if count:
                            into[index] += count
        self._open.clear()
        self._minute = -1
        return merged

    def write(self, pipe: Any, keys: Keyspace) -> None:
        """Queue the writes (and the keys' expiry) on a pipeline the caller executes."""
        for (step, start, name), tally in self.drain().items():
            keep_s = FINE_KEEP_S if step == FINE_STEP_MIN else COARSE_KEEP_S
            slot, counters = keys.series_slot(step, start), keys.series_tally(step, start, name)
            pipe.hset(slot, name, 1)
            for index, count in enumerate(tally):
                if count:
                    pipe.hincrby(counters, SUFFIXES[index], count)
            pipe.expire(slot, keep_s)
            pipe.expire(counters, keep_s)


@dataclass(frozen=True, slots=True)
class Slot:
    """One time slot read back: its first minute and each task's counters."""

    minute: int
    tasks: dict[str, list[int]]

    def merged(self, task: str | None = None) -> list[int]:
        """One task's counters, or every task's added up."""
        if task is not None:
            return self.tasks.get(task, [0] * WIDTH)
        total = [0] * WIDTH
        for tally in self.tasks.values():
            for index, count in enumerate(tally):
                total[index] += count
        return total


def _tally(raw: dict[str, Any]) -> list[int]:
    tally = [0] * WIDTH
    for suffix, value in raw.items():
        index = SUFFIX_INDEX.get(str(suffix))
        if index is not None:
            tally[index] += int(value)
    return tally


async def read_slots(redis: Any, keys: Keyspace, step_min: int, first_minute: int,
                     count: int) -> list[Slot]:
    """`count` consecutive slots of `step_min` minutes from the one holding `first_minute`."""
    start = slot_start(first_minute, step_min)
    minutes = [start + i * step_min for i in range(count)]
    pipe = redis.pipeline(transaction=False)
    for minute in minutes:
        pipe.hkeys(keys.series_slot(step_min, minute))
    wanted = [(minute, str(task)) for minute, tasks in zip(minutes, await pipe.execute(),
                                                           strict=True) for task in tasks]
    pipe = redis.pipeline(transaction=False)
    for minute, task in wanted:
        pipe.hgetall(keys.series_tally(step_min, minute, task))
    found: dict[int, dict[str, list[int]]] = {minute: {} for minute in minutes}
    for (minute, task), raw in zip(wanted, await pipe.execute() if wanted else [], strict=True):
        found[minute][task] = _tally(raw)
    return [Slot(minute, found[minute]) for minute in minutes]
