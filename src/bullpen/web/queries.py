"""Read-only views of the queue shared by the HTML pages and the JSON API."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any

from starlette.concurrency import run_in_threadpool

from bullpen.adapter import QueueClient, now_ms
from bullpen.exports.service import ExportService
from bullpen.exports.store import Export
from bullpen.reconcile import missed_runs, schedule_status
from bullpen.runtime import heartbeat
from bullpen.runtime.series import MINUTE_MS
from bullpen.runtime.stats import read_lateness, read_schedule_runs
from bullpen.web.job_view import attempt_of, trace_attempts
from bullpen.web.search import job_dict
from bullpen.web.state import WebState

EXPORTS_LIST_LIMIT = 500
HOUR_MS = 3_600_000


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


async def job_detail(client: QueueClient, job_id: str) -> dict[str, Any] | None:
    record = await client.get_job(job_id)
    if record is None:
        return None
    return {**job_dict(record), "attempt": attempt_of(record).to_dict(),
            "trace_attempts": trace_attempts(record), "logs": await client.get_logs(job_id)}


async def schedules_view(state: WebState) -> list[dict[str, Any]]:
    """Declared versus registered schedules with their last run and any missed fires."""
    statuses, runs = await asyncio.gather(schedule_status(state.client, state.schedules),
                                          read_schedule_runs(state.client))
    recent = await read_lateness(state.client, [status.name for status in statuses])
    at_ms = now_ms()
    rows = []
    for status in statuses:
        record = status.record
        rows.append(status.as_dict(at_ms) | {
            "last_run": runs.get(status.name),
            "missed_runs": missed_runs(record, at_ms) if record else 0,
            "iteration_count": record.iteration_count if record else 0,
            "recent_runs": recent.get(status.name, []),
        })
    return rows


async def workers_view(client: QueueClient) -> list[dict[str, Any]]:
    workers = await heartbeat.alive_workers(client)
    # jobs_per_minute ends with the minute of the worker's last heartbeat.
    return [{**asdict(info), "age_s": round(info.age_s, 1),
             "jobs_per_minute_end_ms": int(info.last_seen * 1000) // MINUTE_MS * MINUTE_MS}
            for info in workers]


def export_row(export: Export) -> dict[str, Any]:
    now_s = time.time()
    return {**export.to_dict(), "age_s": now_s - export.created_at.timestamp(),
            "expires_in_s": export.expires_at.timestamp() - now_s}


async def list_exports(exports: ExportService) -> list[dict[str, Any]]:
    found = await run_in_threadpool(lambda: exports.list(limit=EXPORTS_LIST_LIMIT))
    return [export_row(export) for export in found]
