"""GET /metrics: Prometheus text built from the counters workers flush to Redis, per scrape."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bullpen.adapter import SchedulerRecord, now_ms
from bullpen.definitions.schedule import ScheduledJob
from bullpen.exports.cleanup import read_cleanup_totals
from bullpen.reconcile import compare, missed_runs
from bullpen.runtime import heartbeat
from bullpen.runtime.stats import DURATION_BUCKETS_S, read_schedule_runs, read_stats
from bullpen.web.state import WebState, web_state


@dataclass(slots=True)
class Snapshot:
    """Everything one scrape reports, read from Redis in one go."""

    queue: str
    counts: dict[str, int]
    paused: bool
    workers: int
    stats: dict[str, dict[str, int]]
    runs: dict[str, dict[str, Any]]
    schedulers: list[SchedulerRecord]
    declared: list[ScheduledJob]
    cleanup_totals: dict[str, int]
    cleanup_last: dict[str, Any] | None
    at_ms: int


async def take_snapshot(state: WebState) -> Snapshot:
    client = state.client
    (counts, paused, workers, stats, runs), (schedulers, (totals, last)) = await asyncio.gather(
        asyncio.gather(client.get_counts(), client.is_paused(), heartbeat.alive_workers(client),
                       read_stats(client), read_schedule_runs(client)),
        asyncio.gather(client.get_schedulers(), read_cleanup_totals(client.redis, client.keys)),
    )
    return Snapshot(client.name, counts, paused, len(workers), stats, runs, schedulers,
                    state.schedules, totals, last, now_ms())


def _histogram(queue: str, stats: dict[str, dict[str, int]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily("bullpen_job_duration_seconds",
                                   "Handler run time per task", labels=["queue", "task"])
    for task, values in sorted(stats.items()):
        if "duration_count" not in values:
            continue
        # Workers count every bound a duration fits under, so the buckets are already cumulative.
        buckets: list[tuple[str, float]] = [
            (str(bound), float(values.get(f"le_{bound}", 0))) for bound in DURATION_BUCKETS_S
        ]
        buckets.append(("+Inf", float(values["duration_count"])))
        family.add_metric([queue, task], buckets, values.get("duration_ms_sum", 0) / 1000)
    return family


def _job_metrics(snap: Snapshot) -> Iterable[Metric]:
    q = snap.queue
    jobs = GaugeMetricFamily("bullpen_jobs", "Jobs in the queue by state",
                             labels=["queue", "state"])
    for state, count in snap.counts.items():
        jobs.add_metric([q, state], count)
    yield jobs
    yield _gauge("bullpen_queue_paused", "1 when the queue is paused", q, int(snap.paused))
    yield _gauge("bullpen_workers_alive", "Workers with a fresh heartbeat", q, snap.workers)
    for outcome in ("processed", "failed"):
        family = CounterMetricFamily(f"bullpen_jobs_{outcome}", f"Jobs {outcome} per task",
                                     labels=["queue", "task"])
        for task, values in sorted(snap.stats.items()):
            family.add_metric([q, task], values.get(outcome, 0))
        yield family
    yield _histogram(q, snap.stats)


def _gauge(name: str, documentation: str, queue: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["queue"])
    family.add_metric([queue], value)
    return family


def _schedule_metrics(snap: Snapshot) -> Iterable[Metric]:
    labels = ["queue", "schedule"]
    lateness = GaugeMetricFamily("bullpen_schedule_lateness_seconds",
                                 "Start of the last run minus its scheduled time", labels=labels)
    duration = GaugeMetricFamily("bullpen_schedule_last_duration_seconds",
                                 "Run time of the last run", labels=labels)
    last_run = GaugeMetricFamily("bullpen_schedule_last_run_timestamp_seconds",
                                 "Scheduled time of the last run", labels=labels)
    success = GaugeMetricFamily("bullpen_schedule_last_run_success",
                                "1 if the last run completed, 0 if it failed", labels=labels)
    for name, run in sorted(snap.runs.items()):
        lateness.add_metric([snap.queue, name], run.get("lateness_ms", 0) / 1000)
        duration.add_metric([snap.queue, name], run.get("duration_ms", 0) / 1000)
        last_run.add_metric([snap.queue, name], run.get("fired_at_ms", 0) / 1000)
        success.add_metric([snap.queue, name], int(run.get("outcome") == "completed"))
    missed = GaugeMetricFamily("bullpen_schedule_missed_runs",
                               "Fire times now past their grace period that no worker ran",
                               labels=labels)
    for record in snap.schedulers:
        missed.add_metric([snap.queue, record.id], missed_runs(record, snap.at_ms))
    registered = GaugeMetricFamily("bullpen_schedule_registered",
                                   "1 if a declared schedule is registered in Redis",
                                   labels=labels)
    for status in compare(snap.declared, snap.schedulers, owned=set()):
        if status.status in ("registered", "missing"):
            registered.add_metric([snap.queue, status.name], int(status.status == "registered"))
    yield from (lateness, duration, last_run, success, missed, registered)


def _cleanup_metrics(snap: Snapshot) -> Iterable[Metric]:
    values = snap.cleanup_totals
    for name, documentation in (("deleted_files", "Export files deleted by cleanup"),
                                ("deleted_bytes", "Bytes of export files deleted by cleanup")):
        family = CounterMetricFamily(f"bullpen_cleanup_{name}", documentation, labels=["queue"])
        family.add_metric([snap.queue], values.get(name, 0))
        yield family
    finished = _last_cleanup_s(snap.cleanup_last)
    if finished is not None:
        yield _gauge("bullpen_cleanup_last_run_timestamp_seconds",
                     "When the last export cleanup finished", snap.queue, finished)


def _last_cleanup_s(last: dict[str, Any] | None) -> float | None:
    finished_ms = (last or {}).get("finished_at_ms")
    return float(finished_ms) / 1000 if isinstance(finished_ms, int | float) else None


class SnapshotCollector(Collector):
    """Yields one scrape's metric families; the web process keeps no per-job state."""

    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap

    def collect(self) -> Iterable[Metric]:
        yield from _job_metrics(self._snap)
        yield from _schedule_metrics(self._snap)
        yield from _cleanup_metrics(self._snap)


def render(snap: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap))
    return generate_latest(registry)


async def metrics(request: Request) -> Response:
    snap = await take_snapshot(web_state(request))
    return Response(render(snap), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[BaseRoute]:
    return [Route("/metrics", metrics)]
