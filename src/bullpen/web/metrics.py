"""GET /metrics: Prometheus text built from the counters workers flush to Redis, per scrape, for
every known queue (a `queue` label on every family)."""

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
from bullpen.web.state import WebState, selected_queue


@dataclass(slots=True)
class Snapshot:
    """Everything one scrape reports about one queue, read from Redis in one go."""

    queue: str
    counts: dict[str, int]
    paused: bool
    workers: int
    stats: dict[str, dict[str, int]]
    runs: dict[str, dict[str, Any]]
    schedulers: list[SchedulerRecord]
    declared: list[ScheduledJob]
    # The export cleanup's totals: kept beside the default queue, so reported with it alone.
    cleanup_totals: dict[str, int] | None
    cleanup_last: dict[str, Any] | None
    at_ms: int


async def take_snapshot(state: WebState) -> Snapshot:
    client = state.client
    with_cleanup = state.queue == state.settings.worker_default_queue
    (counts, paused, workers, stats, runs), (schedulers, (totals, last)) = await asyncio.gather(
        asyncio.gather(client.get_counts(), client.is_paused(), heartbeat.alive_workers(client),
                       read_stats(client), read_schedule_runs(client)),
        asyncio.gather(client.get_schedulers(), read_cleanup_totals(client.redis, client.keys)
                       if with_cleanup else _no_cleanup()),
    )
    return Snapshot(client.name, counts, paused, len(workers), stats, runs, schedulers,
                    state.schedules, totals, last, now_ms())


async def _no_cleanup() -> tuple[None, None]:
    return None, None


def _histogram(snaps: list[Snapshot]) -> HistogramMetricFamily:
    family = HistogramMetricFamily("bullpen_job_duration_seconds",
                                   "Handler run time per task", labels=["queue", "task"])
    for snap in snaps:
        for task, values in sorted(snap.stats.items()):
            if "duration_count" not in values:
                continue
            # Workers count every bound a duration fits under: the buckets are cumulative.
            buckets: list[tuple[str, float]] = [
                (str(bound), float(values.get(f"le_{bound}", 0)))
                for bound in DURATION_BUCKETS_S]
            buckets.append(("+Inf", float(values["duration_count"])))
            family.add_metric([snap.queue, task], buckets,
                              values.get("duration_ms_sum", 0) / 1000)
    return family


def _job_metrics(snaps: list[Snapshot]) -> Iterable[Metric]:
    jobs = GaugeMetricFamily("bullpen_jobs", "Jobs in the queue by state",
                             labels=["queue", "state"])
    for snap in snaps:
        for state, count in snap.counts.items():
            jobs.add_metric([snap.queue, state], count)
    yield jobs
    yield _gauge("bullpen_queue_paused", "1 when the queue is paused",
                 [(snap.queue, int(snap.paused)) for snap in snaps])
    yield _gauge("bullpen_workers_alive", "Workers with a fresh heartbeat",
                 [(snap.queue, snap.workers) for snap in snaps])
    for outcome in ("processed", "failed"):
        family = CounterMetricFamily(f"bullpen_jobs_{outcome}", f"Jobs {outcome} per task",
                                     labels=["queue", "task"])
        for snap in snaps:
            for task, values in sorted(snap.stats.items()):
                family.add_metric([snap.queue, task], values.get(outcome, 0))
        yield family
    yield _histogram(snaps)


def _gauge(name: str, documentation: str, values: list[tuple[str, float]]
           ) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["queue"])
    for queue, value in values:
        family.add_metric([queue], value)
    return family


def _schedule_metrics(snaps: list[Snapshot]) -> Iterable[Metric]:
    labels = ["queue", "schedule"]
    lateness = GaugeMetricFamily("bullpen_schedule_lateness_seconds",
                                 "Start of the last run minus its scheduled time", labels=labels)
    duration = GaugeMetricFamily("bullpen_schedule_last_duration_seconds",
                                 "Run time of the last run", labels=labels)
    last_run = GaugeMetricFamily("bullpen_schedule_last_run_timestamp_seconds",
                                 "Scheduled time of the last run", labels=labels)
    success = GaugeMetricFamily("bullpen_schedule_last_run_success",
                                "1 if the last run completed, 0 if it failed", labels=labels)
    missed = GaugeMetricFamily("bullpen_schedule_missed_runs",
                               "Fire times now past their grace period that no worker ran",
                               labels=labels)
    registered = GaugeMetricFamily("bullpen_schedule_registered",
                                   "1 if a declared schedule is registered in Redis",
                                   labels=labels)
    for snap in snaps:
        for name, run in sorted(snap.runs.items()):
            lateness.add_metric([snap.queue, name], run.get("lateness_ms", 0) / 1000)
            duration.add_metric([snap.queue, name], run.get("duration_ms", 0) / 1000)
            last_run.add_metric([snap.queue, name], run.get("fired_at_ms", 0) / 1000)
            success.add_metric([snap.queue, name], int(run.get("outcome") == "completed"))
        for record in snap.schedulers:
            missed.add_metric([snap.queue, record.id], missed_runs(record, snap.at_ms))
        for status in compare(snap.declared, snap.schedulers, owned=set()):
            if status.status in ("registered", "missing"):
                registered.add_metric([snap.queue, status.name],
                                      int(status.status == "registered"))
    yield from (lateness, duration, last_run, success, missed, registered)


def _cleanup_metrics(snaps: list[Snapshot]) -> Iterable[Metric]:
    with_cleanup = [snap for snap in snaps if snap.cleanup_totals is not None]
    if not with_cleanup:
        return
    for name, documentation in (("deleted_files", "Export files deleted by cleanup"),
                                ("deleted_bytes", "Bytes of export files deleted by cleanup")):
        family = CounterMetricFamily(f"bullpen_cleanup_{name}", documentation, labels=["queue"])
        for snap in with_cleanup:
            family.add_metric([snap.queue], (snap.cleanup_totals or {}).get(name, 0))
        yield family
    finished = [(snap.queue, when) for snap in with_cleanup
                if (when := _last_cleanup_s(snap.cleanup_last)) is not None]
    if finished:
        yield _gauge("bullpen_cleanup_last_run_timestamp_seconds",
                     "When the last export cleanup finished", finished)


def _last_cleanup_s(last: dict[str, Any] | None) -> float | None:
    finished_ms = (last or {}).get("finished_at_ms")
    return float(finished_ms) / 1000 if isinstance(finished_ms, int | float) else None


class SnapshotCollector(Collector):
    """Yields one scrape's metric families; the web process keeps no per-job state."""

    def __init__(self, snaps: list[Snapshot]) -> None:
        self._snaps = snaps

    def collect(self) -> Iterable[Metric]:
        yield from _job_metrics(self._snaps)
        yield from _schedule_metrics(self._snaps)
        yield from _cleanup_metrics(self._snaps)


def render(snaps: list[Snapshot]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snaps))
    return generate_latest(registry)


async def metrics(request: Request) -> Response:
    """Every known queue, or the one the request names (/q/<queue>/metrics, ?queue=)."""
    named = selected_queue(request)
    state: WebState = request.app.state.web
    views = [state.on(named)] if named else state.all_queues
    snaps = await asyncio.gather(*(take_snapshot(view) for view in views))
    return Response(render(list(snaps)), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[BaseRoute]:
    return [Route("/metrics", metrics)]
