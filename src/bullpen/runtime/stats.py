"""Per-task counters and duration histograms, counted in memory and flushed to Redis in batches."""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bullpen.adapter import JobRecord, QueueClient

DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                      300.0)


def scheduled_at_ms(job: JobRecord) -> int | None:
    """The tick a scheduler job stands for; BullMQ names them `repeat:<scheduler>:<millis>`."""
    if not job.scheduler_id:
        return None
    tail = job.id.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


@dataclass(slots=True)
class TaskStats:
    """Accumulates outcomes between flushes; one instance per worker process.

    `record` runs once per job, so it only bumps a per-task list of numbers; the counter names
    and the cumulative `le_` buckets are built at flush time.
    """

    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    schedule_runs: dict[str, str] = field(default_factory=dict)
    # task -> [processed, failed, duration_ms_sum, duration_count, bucket 0 … bucket n-1, over]
    _tallies: dict[str, list[int]] = field(default_factory=dict)

    def record(self, job: JobRecord, started_ms: int, duration_s: float, ok: bool) -> None:
        tally = self._tallies.get(job.name)
        if tally is None:
            tally = self._tallies[job.name] = [0] * (5 + len(DURATION_BUCKETS_S))
        tally[0 if ok else 1] += 1
        tally[2] += int(duration_s * 1000)
        tally[3] += 1
        tally[4 + bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        if job.scheduler_id:
            self._record_run(job, started_ms, duration_s, ok)

    def _record_run(self, job: JobRecord, started_ms: int, duration_s: float, ok: bool) -> None:
        due = scheduled_at_ms(job)
        if due is not None:
            self.schedule_runs[str(job.scheduler_id)] = json.dumps({
                "fired_at_ms": due, "started_at_ms": started_ms,
                "lateness_ms": started_ms - due, "duration_ms": int(duration_s * 1000),
                "outcome": "completed" if ok else "failed", "job_id": job.id,
            })

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
        self.counters.clear()
        self.schedule_runs.clear()
        pipe = client.redis.pipeline(transaction=False)
        for name, amount in counters.items():
            pipe.hincrby(client.keys.task_stats, name, amount)
        if runs:
            pipe.hset(client.keys.schedule_runs, mapping=runs)
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
