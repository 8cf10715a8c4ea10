"""Running a fetched job to its end, as Node's processJob does: the schedule's next tick
first, then the handler, then one script call that records the outcome and, on a busy
worker, hands back the next job, which the same slot runs without a new task."""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bullpen.adapter.active import ActiveJob
from bullpen.adapter.connections import Health, is_outage
from bullpen.adapter.fetcher import Fetcher
from bullpen.adapter.hooks import AttemptObserver
from bullpen.adapter.locks import LockRenewer
from bullpen.adapter.plans import JobPlan, Plans
from bullpen.adapter.protocol import NextJob, QueueCommands, next_job, now_ms, pack, refusal
from bullpen.adapter.repeat import NextIteration
from bullpen.adapter.retries import decide
from bullpen.errors import (
    JobCancelledError,
    JobDecodeError,
    ScheduleIterationError,
    UnrecoverableJobError,
)

Processor = Callable[[ActiveJob], Awaitable[Any]]
Finish = Callable[[bool], Awaitable[Any]]
# JSON.stringify's output for a return value; built once (json.dumps builds one per call).
_to_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_NOT_RUN = object()  # a finishing script's reply when it could not run


class JobObserver(Protocol):
    """Observes every attempt a worker runs (see hooks.AttemptObserver)."""

    def attempt(self, active: ActiveJob) -> AttemptObserver: ...


class JobRunner:
    """Runs jobs and finishes them; after `abandon()` it records no outcome any more."""

    def __init__(self, commands: QueueCommands, plans: Plans, fetcher: Fetcher,
                 renewer: LockRenewer, health: Health, processor: Processor,
                 lock_duration_ms: int, observer: JobObserver | None = None) -> None:
        self._commands = commands
        self._plans = plans
        self._fetcher = fetcher
        self._renewer = renewer
        self._health = health
        self._processor = processor
        self._observer = observer
        self._next_iteration = NextIteration(commands)
        self._lock_duration_s = lock_duration_ms / 1000
        self.abandoned = False

    def abandon(self) -> None:
        """Like Node's close(force): jobs still running are left to their expiring locks."""
        self.abandoned = True

    async def run(self, job: NextJob, token: str) -> None:
        """Run `job`, then every job a finish hands back, until one does not."""
        current: NextJob | None = job
        while current is not None:
            if self._fetcher.closing:
                await self._return_unstarted(current, token)
                return
            current = await self._run_one(current, token)

    async def _return_unstarted(self, job: NextJob, token: str) -> None:
        """A job whose fetch was under way when close began goes back to waiting unstarted:
        a peer takes it at once, where running it could outlast the shutdown timeout and leave
        it locked for a lock duration. If Redis cannot take it back, its lock expires and the
        stalled check returns it."""
        job_id = str(job.job_id)
        try:
            reply = await self._commands.move_to_wait(job_id, token)
        except Exception as exc:
            self._health.failed(exc)
            return
        if isinstance(reply, int) and reply < 0:
            self._health.failed(refusal(reply, job_id, "moveJobFromActiveToWait"))

    async def _run_one(self, job: NextJob, token: str) -> NextJob | None:
        job_id = str(job.job_id)
        raw = iter(job.fields or ())
        fields = dict(zip(raw, raw, strict=True))
        active = ActiveJob(job_id, fields, token, self._commands, {})
        self._renewer.track(job_id, token, active.processed_on_ms or now_ms())
        try:
            undecodable: JobDecodeError | None = None
            try:
                plan = self._plans.plan(token, job_id, fields.get(b"opts"))
            except JobDecodeError as exc:
                self._health.failed(exc)
                plan, undecodable = self._plans.plan_for(token, {}), exc
            active.opts = plan.opts
            if self._observer is not None:
                active.attempt = self._observer.attempt(active)
            if undecodable is not None:
                return await self._fail(active, plan, undecodable)
            return await self._run_handler(active, plan)
        finally:
            if active.attempt is not None:
                active.attempt.close()
            self._renewer.untrack(job_id)

    async def _run_handler(self, active: ActiveJob, plan: JobPlan) -> NextJob | None:
        deferred = active.deferred_failure
        if deferred:
            return await self._fail(active, plan, UnrecoverableJobError(deferred))
        try:
            record = active.record
        except JobDecodeError as exc:
            self._health.failed(exc)
            return await self._fail(active, plan, exc)
        if record.scheduler_id:
            await self._schedule_next(active, record.scheduler_id, record.name, record.data)
        try:
            result = await self._processor(active)
        except JobCancelledError as exc:
            if exc.shutdown:
                await self._hand_back(active)
                return None
            return await self._fail(active, plan, exc)
        except Exception as exc:
            return await self._fail(active, plan, exc)
        try:
            value = _to_json(result)
        except (TypeError, ValueError) as exc:
            return await self._fail(active, plan, TypeError(
                f"the handler's return value is not JSON-serialisable ({exc}); return only dicts, "
                "lists, strings, finite numbers, booleans and None"))
        if active.attempt is not None:
            active.attempt.handled(value, None)
            active.attempt.finishing("complete")
        return await self._finish(active, "moveToFinished", lambda fetch: (
            self._commands.move_to_finished(active.id, "completed", "returnvalue", value, fetch,
                                            plan.completed_opts)))

    async def _fail(self, active: ActiveJob, plan: JobPlan, error: BaseException
                    ) -> NextJob | None:
        """Retry with Node's backoff (moveToDelayed / retryJob) or fail for good."""
        decision = decide(plan.opts, active.attempts_made,
                          isinstance(error, UnrecoverableJobError))
        reason = f"{error}; {decision.reason}" if decision.reason else str(error)
        updates = ["failedReason", reason, "stacktrace",
                   json.dumps(_stacktrace(active, plan, error), separators=(",", ":"))]
        if active.attempt is not None:
            active.attempt.handled(None, error)
            metadata = active.attempt.finishing(
                ("delay" if decision.delay_ms > 0 else "retry") if decision.retry else "fail")
            if metadata:
                updates += ["tm", metadata]  # as Node's moveToFailed writes it (nothing reads it)
        fields = pack(updates)
        job_id, token = active.id, active.token
        if decision.retry and decision.delay_ms > 0:
            return await self._finish(active, "moveToDelayed", lambda fetch: (
                self._commands.move_to_delayed(job_id, token, decision.delay_ms, fields,
                                               self._plans.fetch_opts(token) if fetch else None)))
        if decision.retry:
            # retryJob hands back no job: this slot fetches its next one as usual.
            await self._finish(active, "retryJob", lambda _fetch: self._commands.retry_job(
                job_id, token, fields, bool(plan.opts.get("lifo"))), hands_back=False)
            return None
        return await self._finish(active, "moveToFinished", lambda fetch: (
            self._commands.move_to_finished(job_id, "failed", "failedReason", reason, fetch,
                                            plan.failed_opts, fields)))

    async def _hand_back(self, active: ActiveJob) -> None:
        """A handler that stopped at the shutdown signal: its job goes back to waiting, where
        another worker takes it at once (no attempt counted, no stall), as Node's moveToWait."""
        if active.attempt is not None:
            active.attempt.finishing("wait")
        await self._finish(active, "moveJobFromActiveToWait", lambda _fetch: (
            self._commands.move_to_wait(active.id, active.token)), hands_back=False)

    async def _finish(self, active: ActiveJob, command: str, call: Finish,
                      hands_back: bool = True) -> NextJob | None:
        """Run a finishing script, through an outage for as long as the lock may still hold."""
        deadline = time.monotonic() + self._lock_duration_s
        reply: Any = _NOT_RUN
        while not self.abandoned:
            try:
                reply = await call(not self._fetcher.closing)
            except Exception as exc:
                self._health.failed(exc)
                reply = _NOT_RUN
                if not is_outage(exc) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(self._health.retry_delay_s)
                continue
            self._health.succeeded()
            if isinstance(reply, int) and reply < 0:
                self._health.failed(refusal(reply, active.id, command))
                reply = _NOT_RUN
            break
        if active.attempt is not None:
            active.attempt.finished(reply is not _NOT_RUN)
        if reply is _NOT_RUN or not hands_back:
            return None
        return self._fetcher.update(next_job(reply))

    async def _schedule_next(self, active: ActiveJob, scheduler_id: str, name: str,
                             data: Any) -> None:
        """Node's worker upserts the next iteration before running a tick's job."""
        if active.attempt is None:
            await self._next_tick(active, scheduler_id, name, data)
            return
        with active.attempt.next_tick(scheduler_id):
            await self._next_tick(active, scheduler_id, name, data)

    async def _next_tick(self, active: ActiveJob, scheduler_id: str, name: str,
                         data: Any) -> None:
        while not self.abandoned:
            try:
                await self._next_iteration.schedule(scheduler_id, active.id, name, data,
                                                    active.opts)
            except Exception as exc:
                if is_outage(exc):
                    self._health.failed(exc)
                    await asyncio.sleep(self._health.retry_delay_s)
                    continue
                self._health.failed(ScheduleIterationError(
                    f"schedule {scheduler_id!r}: the tick after job {active.id} could not be "
                    f"created ({type(exc).__name__}: {exc})"))
            return


def _stacktrace(active: ActiveJob, plan: JobPlan, error: BaseException) -> list[str]:
    """The job's earlier traces plus this one, trimmed to its `stackTraceLimit` as Node does."""
    trace = [*active.stacktrace(), "".join(traceback.format_exception(error)).rstrip()]
    limit = plan.opts.get("stackTraceLimit")
    if limit == 0:
        return []
    return trace[-limit:] if isinstance(limit, int) and limit > 0 else trace
