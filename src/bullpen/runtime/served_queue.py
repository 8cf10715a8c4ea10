"""One queue served by a worker process: its consumer and dispatcher, heartbeats, schedules.

A process serving several queues runs one of these per queue, each with its own concurrency,
thread pool, connections, heartbeat and schedule reconcile, so a saturated queue never holds
back another one; only the event loop is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bullpen import logs
from bullpen.adapter import QueueClient, QueueWorker, WorkerOptions
from bullpen.cancellation import CancelListener
from bullpen.definitions.schedule import ScheduledJob
from bullpen.definitions.task import Registry
from bullpen.errors import JobCancelledError
from bullpen.exports.identity import ensure_identity
from bullpen.logs import printable
from bullpen.producer import job_options
from bullpen.queue_names import QueueSpec
from bullpen.reconcile import Reconciler, declared_digests, log_result
from bullpen.runtime import heartbeat
from bullpen.runtime.dispatch import Dispatcher
from bullpen.runtime.series import MINUTE_MS
from bullpen.settings import Settings
from bullpen.telemetry import observer_for, telemetry_for

if TYPE_CHECKING:
    from bullpen.telemetry.tracing import Telemetry

log = logs.get("worker")

# A registered schedule nobody declares any more is replaced after this many heartbeats:
# long enough that a worker's restart does not count as leaving.
DEFER_GRACE_BEATS = 6
RECONCILE_RETRY_S = 2.0
FAREWELL_S = 2.0
SHUTDOWN_NOTICE_MAX_S = 5.0

ConnectionCallback = Callable[[BaseException | None], None]


def shutdown_notice_s(timeout_s: float) -> float:
    """How long before the shutdown timeout handlers get the cancel signal: a fifth of it,
    at most 5 s (5 s with the default 30 s)."""
    return min(SHUTDOWN_NOTICE_MAX_S, timeout_s / 5)


def worker_options(settings: Settings, concurrency: int | None = None) -> WorkerOptions:
    return WorkerOptions(
        concurrency=concurrency or settings.worker_concurrency,
        limiter_max=settings.worker_limiter_max,
        limiter_duration_ms=settings.worker_limiter_duration,
        lock_duration_ms=settings.worker_lock_duration_ms,
        stalled_interval_ms=settings.worker_stalled_interval_ms,
        max_stalled_count=settings.worker_max_stalled_count,
        metrics_max_data_points=settings.worker_metrics_max_data_points,
        keep_completed=settings.worker_keep_completed,
        keep_failed=settings.worker_keep_failed,
    )


class ServedQueue:
    """Consumes one queue with its own concurrency until `close`; registers its schedules."""

    def __init__(self, spec: QueueSpec, settings: Settings, registry: Registry,
                 schedules: list[ScheduledJob], url: str, stop: asyncio.Event,
                 on_connection: ConnectionCallback, named: bool = False) -> None:
        self.name = spec.name
        self.concurrency = spec.concurrency or settings.worker_concurrency
        self.settings = settings
        self.registry = registry
        self.schedules = schedules
        self.url = url
        self.stop = stop
        self._on_connection = on_connection
        # In a process serving several queues, lines about schedules say which queue.
        self._where = f" on queue {spec.name}" if named else ""
        self.client = QueueClient(url, spec.name, settings.worker_prefix)
        self._dispatcher: Dispatcher | None = None
        self._worker: QueueWorker | None = None
        self._beats: asyncio.Task[None] | None = None
        self._registering: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self._telemetry: Telemetry | None = telemetry_for(settings)

    def start(self) -> None:
        """Start consuming (inside the running loop), then heartbeats and the schedules."""
        dispatcher = Dispatcher(self.registry, self.settings, self.client, self.concurrency)
        worker = QueueWorker(self.url, self.name, self.settings.worker_prefix,
                             worker_options(self.settings, self.concurrency), dispatcher)
        if self._telemetry is not None:
            self._telemetry.warn_if_unconfigured(log)
            worker.observer = observer_for(self._telemetry, self.name, worker.worker_id,
                                           worker.name)
        listener = CancelListener(self.url, self.client.keys, lambda: dispatcher.running,
                                  dispatcher.deliver)
        self._listening = asyncio.create_task(listener.run(), name="bullpen-cancel-listener")
        worker.start(on_error=lambda exc: log.warning("Worker error: %s: %s",
                                                      type(exc).__name__, exc),
                     on_connection=self._on_connection, on_stalled=_log_stalled)
        dispatcher.worker_id = worker.worker_id
        self._dispatcher, self._worker = dispatcher, worker
        log.info("Worker started and ready to process jobs from queue: %s", self.name)
        self._beats = asyncio.create_task(self._heartbeats(dispatcher, worker))
        self._registering = asyncio.create_task(self._register_schedules(worker.worker_id))

    def stop_taking(self) -> None:
        """Take no new job: called in the stop signal's handler itself, so a fetch that ends
        before close() gets to run cannot start a job after the signal."""
        if self._worker is not None:
            self._worker.stop_taking()

    async def close(self, timeout_s: float) -> bool:
        """Drain (see QueueWorker.close), then leave: stats, heartbeat, connections.

        False when jobs were still running at the timeout (they are abandoned)."""
        worker, dispatcher = self._worker, self._dispatcher
        if worker is None or dispatcher is None:
            await self.client.close()
            return True
        # Handlers see the cancel signal shortly before the worker abandons their jobs.
        warning = asyncio.get_running_loop().call_later(
            timeout_s - shutdown_notice_s(timeout_s), dispatcher.cancel_all,
            JobCancelledError(shutdown=True))
        finished = await worker.close(timeout_s)
        warning.cancel()
        if self._listening is not None:
            self._listening.cancel()
        if self._registering is not None:
            # It returns once the stop is set; a reconcile under way is let finish.
            await asyncio.wait({self._registering}, timeout=FAREWELL_S)
            self._registering.cancel()
        if self._beats is not None:
            self._beats.cancel()
        # Redis may be gone: the client retries for minutes, so each farewell gets 2 s.
        for farewell in (dispatcher.stats.flush(self.client),
                         heartbeat.forget(self.client, worker.worker_id), self.client.close()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(farewell, FAREWELL_S)
        dispatcher.shutdown()
        return finished

    async def _register_schedules(self, worker_id: str) -> None:
        """Reconcile at start-up, then again while a schedule is deferred (see Reconciler)."""
        log.info("Initializing scheduled jobs%s...", self._where)
        interval_s = self.settings.worker_heartbeat_interval_s
        reconciler = Reconciler(self.client, self.schedules, job_options(self.settings),
                                worker_id, grace_ms=int(interval_s * DEFER_GRACE_BEATS * 1000),
                                telemetry=self._telemetry)
        logged = False
        while not self.stop.is_set():
            try:
                result = await reconciler.run()
            except Exception as exc:
                log.warning("Could not register scheduled jobs%s (%s: %s); retrying in %.0f s",
                            self._where, type(exc).__name__, exc, RECONCILE_RETRY_S)
                await self._pause(RECONCILE_RETRY_S)
                continue
            if not logged:
                log_result(result, self.schedules, self._where)
                logged = True
            elif result.updated:
                log.info("Schedules reconciled%s: %s", self._where, result.summary())
            if not result.deferred:
                return
            await self._pause(interval_s * 2)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _heartbeats(self, dispatcher: Dispatcher, worker: QueueWorker) -> None:
        interval = self.settings.worker_heartbeat_interval_s
        declared = declared_digests(self.schedules, job_options(self.settings))
        started = time.time()
        directory = self.settings.export_path.absolute()
        while True:
            try:
                # Read again on every beat: the directory may appear, or be remounted, later.
                export_dir = (str(directory), await asyncio.to_thread(ensure_identity, directory))
                await asyncio.wait_for(
                    heartbeat.beat(self.client, worker.worker_id, self.concurrency, started,
                                   worker.active_job_ids, ttl_s=interval * 3,
                                   schedules=declared, jobs_per_minute=dispatcher.stats.series
                                   .last_hour(int(time.time() * 1000) // MINUTE_MS),
                                   export_dir=export_dir),
                    timeout=interval * 2)
                await dispatcher.stats.flush(self.client)
                self._on_connection(None)
            except Exception as exc:
                self._on_connection(exc)
            await asyncio.sleep(interval)


def _log_stalled(job_id: str) -> None:
    log.warning("Job %s stalled: the worker running it stopped renewing its lock (it died or "
                "was stopped); moved back to waiting to run again", printable(job_id))
