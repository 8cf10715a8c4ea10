"""One worker process: start-up, schedule registration, heartbeats, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from bullpen import logs
from bullpen.adapter import QueueClient, QueueWorker, WorkerOptions
from bullpen.cancellation import CancelListener
from bullpen.definitions.schedule import ScheduledJob
from bullpen.definitions.task import Registry
from bullpen.errors import JobCancelledError
from bullpen.logs import printable
from bullpen.producer import job_options
from bullpen.reconcile import Reconciler, declared_digests, log_result
from bullpen.redis_url import redact, wait_for_redis
from bullpen.runtime import heartbeat
from bullpen.runtime.dispatch import Dispatcher
from bullpen.runtime.series import MINUTE_MS
from bullpen.runtime.stop import STOP_SIGNALS, StopRequests
from bullpen.settings import Settings, unknown_variables
from bullpen.telemetry import observer_for, telemetry_for

if TYPE_CHECKING:
    from bullpen.telemetry.tracing import Telemetry

log = logs.get("worker")

# A registered schedule nobody declares any more is replaced after this many heartbeats:
# long enough that a worker's restart does not count as leaving.
DEFER_GRACE_BEATS = 6
SHUTDOWN_NOTICE_MAX_S = 5.0


def shutdown_notice_s(timeout_s: float) -> float:
    """How long before the shutdown timeout handlers get the cancel signal: a fifth of it,
    at most 5 s (5 s with the default 30 s)."""
    return min(SHUTDOWN_NOTICE_MAX_S, timeout_s / 5)


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        concurrency=settings.worker_concurrency,
        limiter_max=settings.worker_limiter_max,
        limiter_duration_ms=settings.worker_limiter_duration,
        lock_duration_ms=settings.worker_lock_duration_ms,
        stalled_interval_ms=settings.worker_stalled_interval_ms,
        max_stalled_count=settings.worker_max_stalled_count,
        metrics_max_data_points=settings.worker_metrics_max_data_points,
        keep_completed=settings.worker_keep_completed,
        keep_failed=settings.worker_keep_failed,
    )


class WorkerProcess:
    """One worker process: consumes the queue until SIGTERM/SIGINT, then drains."""

    def __init__(self, settings: Settings, registry: Registry, schedules: list[ScheduledJob],
                 url: str, embedded: bool = False) -> None:
        self.settings = settings
        self.registry = registry
        self.schedules = schedules
        self.url = url
        self.embedded = embedded
        self.stop = asyncio.Event()
        self._requests = StopRequests()
        self._redis_lost = False

    def _on_signal(self, signum: int) -> None:
        request = self._requests.register()
        if not request:
            return  # the same stop request, from another sender (terminal, group, supervisor)
        if request > 1:
            log.warning("Second stop request (%s): exiting now; active jobs will be recovered "
                        "by the stalled check", signal.Signals(signum).name)
            logging.shutdown()
            os._exit(1)
        log.info("%s received: no new jobs; finishing active ones (up to %.0f s)",
                 signal.Signals(signum).name, self.settings.worker_shutdown_timeout_s)
        self.stop.set()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)

    async def run(self) -> int:
        self._install_signals()
        settings = self.settings
        client = QueueClient(self.url, settings.worker_default_queue, settings.worker_prefix)
        for name in unknown_variables():
            log.warning("Unknown setting %s is ignored", name)
        where = " (embedded server: for one machine only)" if self.embedded else ""
        log.info("Using Redis at %s%s", redact(self.url), where)
        log.info("Export directory: %s", settings.export_path.absolute())
        if not await wait_for_redis(self.url, self.stop):
            await client.close()
            return 0
        dispatcher = Dispatcher(self.registry, settings, client, settings.worker_concurrency)
        worker = QueueWorker(self.url, settings.worker_default_queue, settings.worker_prefix,
                             worker_options(settings), dispatcher)
        telemetry = telemetry_for(settings)
        if telemetry is not None:
            telemetry.warn_if_unconfigured(log)
            worker.observer = observer_for(telemetry, settings.worker_default_queue,
                                           worker.worker_id, worker.name)
        listener = CancelListener(self.url, client.keys, lambda: dispatcher.running,
                                  dispatcher.deliver)
        listening = asyncio.create_task(listener.run(), name="bullpen-cancel-listener")
        worker.start(on_error=lambda exc: log.warning("Worker error: %s: %s",
                                                      type(exc).__name__, exc),
                     on_connection=self._on_connection, on_stalled=_log_stalled)
        dispatcher.worker_id = worker.worker_id
        log.info("Worker started and ready to process jobs from queue: %s",
                 settings.worker_default_queue)
        beats = asyncio.create_task(self._heartbeats(client, worker, dispatcher))
        await self._register_schedules(client, worker.worker_id, telemetry)
        await self.stop.wait()
        timeout_s = settings.worker_shutdown_timeout_s
        # Handlers see the cancel signal shortly before the worker abandons their jobs.
        warning = asyncio.get_running_loop().call_later(
            timeout_s - shutdown_notice_s(timeout_s), dispatcher.cancel_all,
            JobCancelledError(shutdown=True))
        finished = await worker.close(timeout_s)
        warning.cancel()
        listening.cancel()
        beats.cancel()
        # Redis may be gone: the client retries for minutes, so each farewell gets 2 s.
        for farewell in (dispatcher.stats.flush(client),
                         heartbeat.forget(client, worker.worker_id), client.close()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(farewell, 2)
        dispatcher.shutdown()
        if not finished:
            log.warning("Shutdown timeout reached: unfinished jobs stay locked until their lock "
                        "expires, then another worker runs them again")
            logging.shutdown()
            os._exit(0)  # a `def` handler's thread cannot be interrupted; do not wait for it
        log.info("Worker stopped")
        return 0

    async def _register_schedules(self, client: QueueClient, worker_id: str,
                                  telemetry: Telemetry | None) -> None:
        """Reconcile at start-up, then again while a schedule is deferred (see Reconciler)."""
        log.info("Initializing scheduled jobs...")
        interval_s = self.settings.worker_heartbeat_interval_s
        reconciler = Reconciler(client, self.schedules, job_options(self.settings), worker_id,
                                grace_ms=int(interval_s * DEFER_GRACE_BEATS * 1000),
                                telemetry=telemetry)
        logged = False
        while not self.stop.is_set():
            try:
                result = await reconciler.run()
            except Exception as exc:
                log.warning("Could not register scheduled jobs (%s: %s); retrying in 2 s",
                            type(exc).__name__, exc)
                await self._pause(2)
                continue
            if not logged:
                log_result(result, self.schedules)
                logged = True
            elif result.updated:
                log.info("Schedules reconciled: %s", result.summary())
            if not result.deferred:
                return
            await self._pause(interval_s * 2)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _heartbeats(self, client: QueueClient, worker: QueueWorker,
                          dispatcher: Dispatcher) -> None:
        interval = self.settings.worker_heartbeat_interval_s
        declared = declared_digests(self.schedules, job_options(self.settings))
        started = time.time()
        while True:
            try:
                await asyncio.wait_for(
                    heartbeat.beat(client, worker.worker_id, self.settings.worker_concurrency,
                                   started, worker.active_job_ids, ttl_s=interval * 3,
                                   schedules=declared, jobs_per_minute=dispatcher.stats.series
                                   .last_hour(int(time.time() * 1000) // MINUTE_MS)),
                    timeout=interval * 2)
                await dispatcher.stats.flush(client)
                self._on_connection(None)
            except Exception as exc:
                self._on_connection(exc)
            await asyncio.sleep(interval)

    def _on_connection(self, error: BaseException | None) -> None:
        """Log an outage once, when the worker or the heartbeat first meets it, and its end."""
        if error is not None and not self._redis_lost:
            log.warning("Lost Redis at %s (%s); jobs wait in Redis and resume when it answers",
                        redact(self.url), type(error).__name__)
        elif error is None and self._redis_lost:
            log.info("Redis at %s answers again; carrying on", redact(self.url))
        self._redis_lost = error is not None


def _log_stalled(job_id: str) -> None:
    log.warning("Job %s stalled: the worker running it stopped renewing its lock (it died or "
                "was stopped); moved back to waiting to run again", printable(job_id))


def run_worker(settings: Settings, registry: Registry, schedules: list[ScheduledJob], url: str,
               embedded: bool) -> int:
    """Run one worker process on uvloop (where available) until it is signalled to stop."""
    service = WorkerProcess(settings, registry, schedules, url, embedded)
    try:
        import uvloop  # noqa: PLC0415 - optional: not installed on Windows

        return uvloop.run(service.run())
    except ImportError:
        return asyncio.run(service.run())
