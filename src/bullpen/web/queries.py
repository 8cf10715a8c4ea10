"""Read-only views of the queue shared by the HTML pages and the JSON API."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from bullpen.adapter import JOB_STATES, JobRecord, QueueClient, now_ms
from bullpen.exports.service import ExportService
from bullpen.exports.store import Export
from bullpen.reconcile import missed_runs, schedule_status
from bullpen.runtime import heartbeat
from bullpen.runtime.stats import read_schedule_runs
from bullpen.shown import fields_of
from bullpen.web.state import WebState

PAGE_SIZE = 25
EXPORTS_LIST_LIMIT = 500
HOUR_MS = 3_600_000
# Filtering by task scans the state's list in chunks; beyond this many jobs it stops looking.
FILTER_SCAN_LIMIT = 5000
FILTER_CHUNK = 250


def job_dict(record: JobRecord) -> dict[str, Any]:
    """A job as JSON: the record's fields plus its duration and display name."""
    values = fields_of(record)
    values["duration_ms"] = record.duration_ms
    values["display_name"] = record.display_name
    return values


async def overview(state: WebState) -> dict[str, Any]:
    """Counts by state, whether paused, and throughput and failure rate over the last hour."""
    client = state.client
    since_ms = now_ms() - HOUR_MS
    counts, paused, done, failed, workers = await asyncio.gather(
        client.get_counts(), client.is_paused(),
        client.count_finished_since("completed", since_ms),
        client.count_finished_since("failed", since_ms),
        heartbeat.alive_workers(client),
    )
    finished = done + failed
    return {
        "queue": client.name,
        "counts": counts,
        "paused": paused,
        "last_hour": {
            "completed": done,
            "failed": failed,
            "per_minute": round(finished / 60, 2),
            "failure_rate": round(failed / finished, 4) if finished else None,
        },
        "workers": len(workers),
        "tasks": state.registry.names(),
        "queues": state.queues,
    }


@dataclass(slots=True)
class JobPage:
    state: str
    task: str | None
    page: int
    size: int
    jobs: list[JobRecord] = field(default_factory=list)
    total: int | None = None
    has_next: bool = False
    paused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "task": self.task, "page": self.page, "size": self.size,
                "total": self.total, "has_next": self.has_next, "paused": self.paused,
                "jobs": [job_dict(job) for job in self.jobs]}


async def list_jobs(client: QueueClient, state: str, task: str | None, page: int,
                    size: int = PAGE_SIZE) -> JobPage:
    """One page of a state's jobs, newest first, optionally only those of one task."""
    if state not in JOB_STATES:
        raise ValueError(f"unknown job state {state!r} (expected one of {', '.join(JOB_STATES)})")
    page = max(page, 1)
    # Paused by bullpen, Node or bull-board alike: BullMQ's flag in the queue's meta hash.
    result = JobPage(state, task or None, page, size, paused=await client.is_paused())
    if not task:
        start = (page - 1) * size
        result.jobs = await client.get_jobs(state, start, start + size - 1)
        result.total = (await client.get_counts([state]))[state]
        result.has_next = start + size < result.total
        return result
    wanted_from, matched = (page - 1) * size, 0
    for start in range(0, FILTER_SCAN_LIMIT, FILTER_CHUNK):
        chunk = await client.get_jobs(state, start, start + FILTER_CHUNK - 1)
        for job in chunk:
            if job.name != task:
                continue
            if matched >= wanted_from + size:
                result.has_next = True
                return result
            if matched >= wanted_from:
                result.jobs.append(job)
            matched += 1
        if len(chunk) < FILTER_CHUNK:
            break
    return result


async def job_detail(client: QueueClient, job_id: str) -> dict[str, Any] | None:
    record = await client.get_job(job_id)
    if record is None:
        return None
    return {**job_dict(record), "logs": await client.get_logs(job_id)}


async def schedules_view(state: WebState) -> list[dict[str, Any]]:
    """Declared versus registered schedules with their last run and any missed fires."""
    statuses, runs = await asyncio.gather(schedule_status(state.client, state.schedules),
                                          read_schedule_runs(state.client))
    at_ms = now_ms()
    rows = []
    for status in statuses:
        record = status.record
        rows.append(status.as_dict(at_ms) | {
            "last_run": runs.get(status.name),
            "missed_runs": missed_runs(record, at_ms) if record else 0,
            "iteration_count": record.iteration_count if record else 0,
        })
    return rows


async def workers_view(client: QueueClient) -> list[dict[str, Any]]:
    workers = await heartbeat.alive_workers(client)
    return [{**asdict(info), "age_s": round(info.age_s, 1)} for info in workers]


def export_row(export: Export) -> dict[str, Any]:
    now_s = time.time()
    return {**export.to_dict(), "age_s": now_s - export.created_at.timestamp(),
            "expires_in_s": export.expires_at.timestamp() - now_s}


async def list_exports(exports: ExportService) -> list[dict[str, Any]]:
    found = await run_in_threadpool(lambda: exports.list(limit=EXPORTS_LIST_LIMIT))
    return [export_row(export) for export in found]
