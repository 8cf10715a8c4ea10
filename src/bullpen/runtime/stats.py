"""Per-task counters and duration histograms, per-minute history and recent schedule runs,
counted in memory and flushed to Redis in batches."""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bullpen.adapter import JobRecord, QueueClient
from bullpen.runtime.series import FAILED, OK, RETRIED, MinuteSeries

# The lateness strip of each schedule: its most recent runs, kept a week after the last.
LATENESS_RUNS = 60
LATENESS_KEEP_S = 7 * 24 * 3600
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                      300.0)


def scheduled_at_ms(job: JobRecord) -> int | None:
    """The tick a scheduler job stands for; BullMQ names them `repeat:<scheduler>:<millis>`."""
    if not job.scheduler_id:
        return None
    tail = job.id.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def wait_ms(job: JobRecord, started_ms: int) -> int | None:
    """Enqueue, or due time, to start; first attempts only (a retry's wait includes its
    backoff). A schedule's tick is due at the instant its id names, a delayed job its delay
    after enqueue (read from its options: BullMQ zeroes the hash's `delay` when it is due)."""
    if job.attempts_made:
        return None
    due = scheduled_at_ms(job) if job.scheduler_id else None
    if due is None:
        due = job.timestamp_ms + int(job.raw_opts.get("delay") or job.delay_ms or 0)
    return started_ms - due


@dataclass(slots=True)
class TaskStats:
    """Accumulates outcomes between flushes; one instance per worker process.

    `record` runs once per job, so it only bumps lists of numbers; the counter names, the
    cumulative `le_` buckets and the history's field names are built at flush time.
    """

    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    schedule_runs: dict[str, str] = field(default_factory=dict)
    series: MinuteSeries = field(default_factory=MinuteSeries)
    # schedule name -> its runs since the last flush, oldest first (JSON)
    lateness: dict[str, list[str]] = field(default_factory=dict)
    # task -> [processed, failed, duration_ms_sum, duration_count, bucket 0 … bucket n-1, over]
    _tallies: dict[str, list[int]] = field(default_factory=dict)

    def record(self, job: JobRecord, started_ms: int, duration_s: float, ok: bool,
               retried: bool = False) -> None:
        """Count one attempt; `retried`: it failed and BullMQ will run it again."""
        tally = self._tallies.get(job.name)
        if tally is None:
            tally = self._tallies[job.name] = [0] * (5 + len(DURATION_BUCKETS_S))
        tally[0 if ok else 1] += 1
        run_ms = duration_s * 1000
        tally[2] += int(run_ms)
        tally[3] += 1
        tally[4 + bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        self.series.record(job.name, started_ms + int(run_ms), wait_ms(job, started_ms), run_ms,
                           OK if ok else RETRIED if retried else FAILED)
        if job.scheduler_id:
            self._record_run(job, started_ms, duration_s, ok)

    def _record_run(self, job: JobRecord, started_ms: int, duration_s: float, ok: bool) -> None:
        due = scheduled_at_ms(job)
        if due is not None:
            run = json.dumps({
                "fired_at_ms": due, "started_at_ms": started_ms,
                "lateness_ms": started_ms - due, "duration_ms": int(duration_s * 1000),
                "outcome": "completed" if ok else "failed", "job_id": job.id,
            })
            self.schedule_runs[str(job.scheduler_id)] = run
            self.lateness.setdefault(str(job.scheduler_id), []).append(run)

    def _fold_tallies(self) -> None:
        """Move the per-task tallies into `counters` under their flushed names."""
        for task, tally in self._tallies.items():
            for index, name in enumerate(("processed", "failed", "duration_ms_sum",
                                          "duration_count")):
                if tally[index]:
                    self.counters[f"{task}|{name}"] += tally[index]
            cumulative = 0
            for bound, count in zip(DURATION_BUCKETS_S, tally[4:], strict=False):
                cumulative += count
                if cumulative:
                    self.counters[f"{task}|le_{bound}"] += cumulative
        self._tallies.clear()

    async def flush(self, client: QueueClient) -> None:
        self._fold_tallies()
        if not self.counters and not self.schedule_runs:
            return
        counters = dict(self.counters)
        runs: dict[Any, Any] = dict(self.schedule_runs)
        lateness = dict(self.lateness)
        self.counters.clear()
        self.schedule_runs.clear()
        self.lateness.clear()
        pipe = client.redis.pipeline(transaction=False)
        for name, amount in counters.items():
            pipe.hincrby(client.keys.task_stats, name, amount)
        if runs:
            pipe.hset(client.keys.schedule_runs, mapping=runs)
        for name, entries in lateness.items():
            key = client.keys.schedule_lateness(name)
            pipe.lpush(key, *entries)
            pipe.ltrim(key, 0, LATENESS_RUNS - 1)
            pipe.expire(key, LATENESS_KEEP_S)
        self.series.write(pipe, client.keys)
        await pipe.execute()


async def read_stats(client: QueueClient) -> dict[str, dict[str, int]]:
    """Flushed counters grouped by task: {'health.check': {'processed': 3, …}, …}."""
    raw = await client.redis.hgetall(client.keys.task_stats)
    grouped: dict[str, dict[str, int]] = defaultdict(dict)
    for name, value in raw.items():
        task, _, metric = str(name).rpartition("|")
        grouped[task][metric] = int(value)
    return dict(grouped)


async def read_schedule_runs(client: QueueClient) -> dict[str, dict[str, Any]]:
    raw = await client.redis.hgetall(client.keys.schedule_runs)
    return {str(name): json.loads(value) for name, value in raw.items()}


async def read_lateness(client: QueueClient, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each schedule's recent runs (fired_at_ms, lateness_ms, outcome, …), oldest first."""
    pipe = client.redis.pipeline(transaction=False)
    for name in names:
        pipe.lrange(client.keys.schedule_lateness(name), 0, LATENESS_RUNS - 1)
    found = await pipe.execute() if names else []
    return {name: [json.loads(entry) for entry in reversed(entries)]
            for name, entries in zip(names, found, strict=True)}
