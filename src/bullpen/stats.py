"""Per-task counters and duration histograms, counted in memory and flushed to Redis in batches."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bullpen.adapter import JobRecord, QueueClient

STATS_KEY = "bullpen:stats"
SCHEDULE_RUNS_KEY = "bullpen:schedule-runs"
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
    """Accumulates outcomes between flushes; one instance per worker process."""

    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    schedule_runs: dict[str, str] = field(default_factory=dict)

    def record(self, job: JobRecord, started_ms: int, duration_s: float, ok: bool) -> None:
        task = job.name
        self.counters[f"{task}|{'processed' if ok else 'failed'}"] += 1
        self.counters[f"{task}|duration_ms_sum"] += int(duration_s * 1000)
        self.counters[f"{task}|duration_count"] += 1
        for bound in DURATION_BUCKETS_S:
            if duration_s <= bound:
                self.counters[f"{task}|le_{bound}"] += 1
        due = scheduled_at_ms(job)
        if job.scheduler_id and due is not None:
            self.schedule_runs[job.scheduler_id] = json.dumps({
                "fired_at_ms": due, "started_at_ms": started_ms,
                "lateness_ms": started_ms - due, "duration_ms": int(duration_s * 1000),
                "outcome": "completed" if ok else "failed", "job_id": job.id,
            })

    async def flush(self, client: QueueClient) -> None:
        if not self.counters and not self.schedule_runs:
            return
        counters, runs = dict(self.counters), dict(self.schedule_runs)
        self.counters.clear()
        self.schedule_runs.clear()
        pipe = client.redis.pipeline(transaction=False)
        for name, amount in counters.items():
            pipe.hincrby(client.key(STATS_KEY), name, amount)
        if runs:
            pipe.hset(client.key(SCHEDULE_RUNS_KEY), mapping=runs)
        await pipe.execute()


async def read_stats(client: QueueClient) -> dict[str, dict[str, int]]:
    """Flushed counters grouped by task: {'health.check': {'processed': 3, …}, …}."""
    raw: dict[str, str] = await client.redis.hgetall(client.key(STATS_KEY))
    grouped: dict[str, dict[str, int]] = defaultdict(dict)
    for name, value in raw.items():
        task, _, metric = name.rpartition("|")
        grouped[task][metric] = int(value)
    return dict(grouped)


async def read_schedule_runs(client: QueueClient) -> dict[str, dict[str, Any]]:
    raw: dict[str, str] = await client.redis.hgetall(client.key(SCHEDULE_RUNS_KEY))
    return {name: json.loads(value) for name, value in raw.items()}
