"""Runs each job's handler by task name: coroutines on the loop, plain functions in threads,
isolated ones in child processes."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bullpen import logs
from bullpen.adapter import ActiveJob, QueueClient, now_ms
from bullpen.definitions.task import Registry
from bullpen.errors import UnknownTaskError, UnrecoverableJobError
from bullpen.runtime.context import JobContext
from bullpen.runtime.isolation import IsolatedPool
from bullpen.runtime.series import MinuteSeries
from bullpen.runtime.stats import TaskStats
from bullpen.settings import Settings

log = logs.get("worker")


class Dispatcher:
    """The worker's processor: look up the task, build its context, run it, log the outcome."""

    def __init__(self, registry: Registry, settings: Settings, queue: QueueClient,
                 threads: int) -> None:
        self._registry = registry
        self._settings = settings
        self._queue = queue
        # One thread per concurrent job, so `def` handlers never queue behind each other.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bullpen-job")
        self.worker_id = ""
        self.stats = TaskStats(series=MinuteSeries(registry.names()))
        self._isolated = IsolatedPool()

    async def __call__(self, active: ActiveJob) -> Any:
        job = active.record
        log.info("Processing job %s of type %s", job.display_name, job.name)
        loop = asyncio.get_running_loop()
        ctx = JobContext(job, self.worker_id, self._settings, self._queue, active, loop)
        started_ms, started = now_ms(), time.perf_counter()
        ok = retried = False
        try:
            task = self._registry.get(job.name)
            if task is None:  # e.g. added by a Node producer or a newer bullpen
                raise UnknownTaskError(job.name, self._registry.names())
            args = task.arguments(job.data, ctx)
            if task.isolation is not None:
                result = await loop.run_in_executor(self._executor, self._isolated.run, task,
                                                    job, ctx)
            elif task.is_async:
                result = await task.handler(*args)
            else:
                result = await loop.run_in_executor(self._executor, task.handler, *args)
            ok = True
        except Exception as exc:
            attempt = job.attempts_made + 1
            retried = attempt < job.attempts_allowed and not isinstance(exc,
                                                                         UnrecoverableJobError)
            # A manual retry of a job that used its attempts grants it one more: the last one.
            log.warning("Job %s of type %s failed (attempt %d of %d): %s", job.display_name,
                        job.name, attempt, max(attempt, job.attempts_allowed), exc)
            raise
        finally:
            await ctx.flush()
            self.stats.record(job, started_ms, time.perf_counter() - started, ok, retried)
        return result

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._isolated.close()
