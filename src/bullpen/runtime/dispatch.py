"""Runs each job's handler by task name: coroutines on the loop, plain functions in threads,
isolated ones in child processes; and carries cancel requests to the handler running a job."""

from __future__ import annotations

import asyncio
import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bullpen import logs
from bullpen.adapter import ActiveJob, JobRecord, QueueClient, now_ms
from bullpen.cancellation import CancelRequest
from bullpen.definitions.task import Registry, Task
from bullpen.errors import JobCancelledError, UnknownTaskError, UnrecoverableJobError
from bullpen.runtime.context import JobContext
from bullpen.runtime.isolation import IsolatedPool
from bullpen.runtime.series import MinuteSeries
from bullpen.runtime.stats import TaskStats
from bullpen.settings import Settings
from bullpen.telemetry import telemetry_for

log = logs.get("worker")

# A request for a job this worker has fetched but not started yet is kept this long, so it
# applies once the handler starts; requests for other workers' jobs expire unused.
EARLY_KEEP_S = 10.0
EARLY_MAX = 1000


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
        self._telemetry = telemetry_for(settings)
        self._running: dict[str, JobContext] = {}
        self._early: dict[str, tuple[str, JobCancelledError, float]] = {}

    async def __call__(self, active: ActiveJob) -> Any:
        job = active.record
        log.info("Processing job %s of type %s", job.display_name, job.name)
        loop = asyncio.get_running_loop()
        ctx = JobContext(job, self.worker_id, self._settings, self._queue, active, loop)
        self._running[active.id] = ctx
        if self._early:
            self._apply_early(ctx)
        started_ms, started = now_ms(), time.perf_counter()
        ok = retried = False
        try:
            task = self._registry.get(job.name)
            if task is None:  # e.g. added by a Node producer or a newer bullpen
                raise UnknownTaskError(job.name, self._registry.names())
            _raise_if_cancelled(ctx)
            if task.is_async and task.isolation is None:
                # Run here (no task of its own): a cancel request cancels this task.
                ctx._task = asyncio.current_task()
                try:
                    result = await task.handler(*task.arguments(job.data, ctx))
                except asyncio.CancelledError:
                    if not _ours_only(ctx):
                        raise  # the worker itself is cancelling this slot
                    raise _cancellation(ctx) from None
                finally:
                    ctx._task = None
                    if ctx._interrupted:
                        _ours_only(ctx)
            else:
                result = await self._run_elsewhere(task, ctx, loop)
            _raise_if_cancelled(ctx)  # it ran on, ignoring the request: not a success
            ok = True
        except Exception as exc:
            error = _logged_failure(job, ctx, exc)
            retried = (job.attempts_made + 1 < job.attempts_allowed
                       and not isinstance(error, UnrecoverableJobError))
            if error is exc:
                raise
            raise error from exc  # cancelled: whatever the handler raised after the request
        finally:
            if self._running.get(active.id) is ctx:
                del self._running[active.id]
            await ctx.flush()
            self.stats.record(job, started_ms, time.perf_counter() - started, ok, retried)
        return result

    async def _run_elsewhere(self, task: Task, ctx: JobContext,
                             loop: asyncio.AbstractEventLoop) -> Any:
        """A `def` handler in a thread, an isolated one in a child process."""
        if task.isolation is not None:
            carrier = self._telemetry.carrier() if self._telemetry is not None else None
            return await loop.run_in_executor(self._executor, self._isolated.run, task,
                                              ctx.job, ctx, carrier)
        # In the caller's context, as asyncio.to_thread does: the job's span is current.
        return await loop.run_in_executor(self._executor, contextvars.copy_context().run,
                                          task.handler, *task.arguments(ctx.job.data, ctx))

    def cancel(self, job_id: str, token: str | None, error: JobCancelledError) -> bool:
        """Signal the handler running `job_id` (this run of it, when `token` is given)."""
        ctx = self._running.get(job_id)
        if ctx is None or (token is not None and ctx.token != token):
            return False
        ctx.request_cancel(error)
        return True

    def deliver(self, request: CancelRequest) -> None:
        """A request from the cancel listener: signal the run it names, or keep it a moment
        for a job fetched but not started yet (most name other workers' jobs, and expire)."""
        error = JobCancelledError(request.reason)
        if self.cancel(request.job_id, request.token, error):
            return
        now = time.monotonic()
        if len(self._early) >= EARLY_MAX:
            self._early = {job_id: kept for job_id, kept in self._early.items() if kept[2] > now}
            if len(self._early) >= EARLY_MAX:
                self._early.clear()
        self._early[request.job_id] = (request.token, error, now + EARLY_KEEP_S)

    def _apply_early(self, ctx: JobContext) -> None:
        kept = self._early.pop(ctx.job.id, None)
        if kept is not None and kept[0] == ctx.token and kept[2] > time.monotonic():
            ctx.request_cancel(kept[1])

    def cancel_all(self, error: JobCancelledError) -> None:
        for ctx in list(self._running.values()):
            ctx.request_cancel(error)

    @property
    def running(self) -> dict[str, str]:
        """Job id → lock token of every job whose handler runs now."""
        return {job_id: ctx.token for job_id, ctx in self._running.items()}

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._isolated.close()


def _logged_failure(job: JobRecord, ctx: JobContext, exc: Exception) -> Exception:
    """Log a failed (or stopped) attempt; the error the job ends with."""
    attempt = job.attempts_made + 1
    cancel = ctx.cancellation
    if cancel is not None and (exc is cancel or not cancel.shutdown):
        log.warning("Job %s of type %s stopped (attempt %d): %s", job.display_name, job.name,
                    attempt, cancel)
        return cancel
    # A manual retry of a job that used its attempts grants it one more: the last one.
    log.warning("Job %s of type %s failed (attempt %d of %d): %s", job.display_name, job.name,
                attempt, max(attempt, job.attempts_allowed), exc)
    return exc


def _cancellation(ctx: JobContext) -> JobCancelledError:
    cancel = ctx.cancellation
    assert cancel is not None, "only a cancel request withdraws its own task cancellation"
    return cancel


def _raise_if_cancelled(ctx: JobContext) -> None:
    """A cancel request (not a shutdown notice) ends the job, whatever the handler does."""
    cancel = ctx._cancel
    if cancel is not None and not cancel.shutdown:
        raise cancel from None


def _ours_only(ctx: JobContext) -> bool:
    """Withdraw the task cancellation a cancel request made (once); False when someone else
    cancels the task too."""
    task = asyncio.current_task()
    if not ctx._interrupted or task is None:
        return False
    ctx._interrupted = False
    task.uncancel()
    return task.cancelling() == 0
