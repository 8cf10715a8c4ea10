"""One worker process: start-up, its queues (one ServedQueue each), graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from bullpen import logs
from bullpen.loader import Definitions
from bullpen.queue_names import QueueSpec
from bullpen.redis_url import redact, wait_for_redis
from bullpen.runtime.served_queue import ServedQueue
from bullpen.runtime.stop import STOP_SIGNALS, StopRequests
from bullpen.settings import Settings, unknown_variables

log = logs.get("worker")


class WorkerProcess:
    """One worker process: consumes its queues until SIGTERM/SIGINT, then drains them all."""

    def __init__(self, settings: Settings, definitions: Definitions, url: str,
                 embedded: bool = False, queues: list[QueueSpec] | None = None) -> None:
        self.settings = settings
        self.definitions = definitions
        self.queues = queues or settings.queue_specs
        self.url = url
        self.embedded = embedded
        self.stop = asyncio.Event()
        self._requests = StopRequests()
        self._redis_lost = False
        self._serving: list[ServedQueue] = []

    def _on_signal(self, signum: int) -> None:
        request = self._requests.register()
        if not request:
            return  # the same stop request, from another sender (terminal, group, supervisor)
        if request > 1:
            log.warning("Second stop request (%s): exiting now; active jobs will be recovered "
                        "by the stalled check", signal.Signals(signum).name)
            logging.shutdown()
            os._exit(1)
        for queue in self._serving:
            queue.stop_taking()
        log.info("%s received: no new jobs; finishing active ones (up to %.0f s)",
                 signal.Signals(signum).name, self.settings.worker_shutdown_timeout_s)
        self.stop.set()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _served(self) -> list[ServedQueue]:
        default = self.settings.worker_default_queue
        return [ServedQueue(spec, self.settings, self.definitions.registry,
                            self.definitions.schedules_on(spec.name, default), self.url,
                            self.stop, self._on_connection, named=len(self.queues) > 1)
                for spec in self.queues]

    async def run(self) -> int:
        self._install_signals()
        settings = self.settings
        for name in unknown_variables():
            log.warning("Unknown setting %s is ignored", name)
        where = " (embedded server: for one machine only)" if self.embedded else ""
        log.info("Using Redis at %s%s", redact(self.url), where)
        log.info("Export directory: %s", settings.export_path.absolute())
        if not await wait_for_redis(self.url, self.stop):
            return 0
        served = self._serving = self._served()
        for queue in served:
            queue.start()
        await self.stop.wait()
        timeout_s = settings.worker_shutdown_timeout_s
        finished = await asyncio.gather(*(queue.close(timeout_s) for queue in served))
        if not all(finished):
            log.warning("Shutdown timeout reached: unfinished jobs stay locked until their lock "
                        "expires, then another worker runs them again")
            logging.shutdown()
            os._exit(0)  # a `def` handler's thread cannot be interrupted; do not wait for it
        log.info("Worker stopped")
        return 0

    def _on_connection(self, error: BaseException | None) -> None:
        """Log an outage once, when the worker or the heartbeat first meets it, and its end."""
        if error is not None and not self._redis_lost:
            log.warning("Lost Redis at %s (%s); jobs wait in Redis and resume when it answers",
                        redact(self.url), type(error).__name__)
        elif error is None and self._redis_lost:
            log.info("Redis at %s answers again; carrying on", redact(self.url))
        self._redis_lost = error is not None


def run_worker(settings: Settings, definitions: Definitions, url: str, embedded: bool,
               queues: list[QueueSpec] | None = None) -> int:
    """Run one worker process on uvloop (where available) until it is signalled to stop."""
    service = WorkerProcess(settings, definitions, url, embedded, queues)
    try:
        import uvloop  # noqa: PLC0415 - optional: not installed on Windows

        return uvloop.run(service.run())
    except ImportError:
        return asyncio.run(service.run())
