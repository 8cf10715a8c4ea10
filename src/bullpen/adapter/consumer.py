"""The port's worker with bullpen's fixes, and QueueWorker, which builds it inside the loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import bullmq
from bullmq.job_scheduler import JobScheduler
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bullpen import cron
from bullpen.adapter.options import WorkerOptions
from bullpen.adapter.pipelining import PipeliningRedis
from bullpen.adapter.records import ActiveJob, Processor, now_ms
from bullpen.adapter.redis_options import connection_kwargs, one_shot
from bullpen.errors import UnrecoverableJobError


def repeat_strategy(millis: int, opts: dict[str, Any]) -> int | None:
    pattern = opts.get("pattern")
    if not pattern:
        return None
    start = opts.get("startDate")
    base = max(millis, int(start)) if isinstance(start, int | float) else millis
    return cron.next_fire_ms(pattern, base, opts.get("tz"))


# How long before a delayed job is due the worker stops blocking in Redis and sleeps locally.
# Jobs enqueued in that window start when it ends: at most this much later.
LOCAL_TIMER_MS = 110


class _PortWorker(bullmq.Worker):  # type: ignore[misc]
    """The port's worker with its limiter, timeout and cron gaps closed."""

    _job_scheduler: JobScheduler | None
    limitUntil: int  # noqa: N815 - port's name
    closing: bool
    paused: bool

    @property
    def jobScheduler(self) -> JobScheduler:  # noqa: N802 - port's name
        if self._job_scheduler is None:
            self._job_scheduler = JobScheduler(self, repeat_strategy=repeat_strategy)
        return self._job_scheduler

    async def run(self) -> None:
        # Asking the version sets canDoubleTimeout, so block timeouts keep their milliseconds.
        await self.blockingRedisConnection.getRedisVersion()
        await self.redisConnection.getRedisVersion()
        await super().run()

    async def getNextJob(self, token: str) -> Any:  # noqa: N802 - port's name
        if self.limitUntil > 0 and not self.closing and not self.paused:
            delay_s = self.limitUntil / 1000
            self.limitUntil = 0
            await asyncio.sleep(delay_s)
            if self.closing:
                return None
            job = await self.moveToActive(token)
            if job:
                self.emit("active", job, "waiting")
            return job
        return await super().getNextJob(token)

    async def waitForJob(self) -> int:  # noqa: N802 - port's name
        if self.blockUntil:
            remaining_ms = self.blockUntil - now_ms()
            if remaining_ms <= LOCAL_TIMER_MS:
                # Redis ends a blocked command on its own timer tick (100 ms at the default
                # hz 10), so a due job waited 50 ms on average; an event-loop timer is exact.
                await asyncio.sleep(max(remaining_ms, 0) / 1000)
                return 0
        return int(await super().waitForJob())

    def getBlockTimeout(self, block_until: int) -> float:  # noqa: N802 - port's name
        if block_until:  # wake up before the due time; waitForJob's local timer does the rest
            return float(super().getBlockTimeout(block_until - LOCAL_TIMER_MS))
        return float(super().getBlockTimeout(block_until))

    async def processJob(self, job: Any, token: str) -> None:  # noqa: N802 - port's name
        # Like Node's worker: finishing a job fetches the next in the same script call, and this
        # task runs it, so a busy worker makes one round trip and creates no task per job.
        while job is not None:
            job = await self._run_job(job, token)

    async def _run_job(self, job: Any, token: str) -> Any:
        """Run one job; on success return the next job the finish script handed back (or None)."""
        if job.deferredFailure or self._processor_wants_signal:
            await super().processJob(job, token)
            return None
        self.jobs.add((job, token))
        self.lockManager.track_job(job.id, token, int(time.time() * 1000))
        try:
            result = await self.processor(job, token)
            if self.forceClosing:
                self.emit("completed", job, result)
                return None
            fetch_next = not (self.closing or self.paused)
            finished = await self.backend.moveToCompleted(
                job, result, job.opts.get("removeOnComplete", False), token,
                fetch_next=fetch_next)
            job.returnvalue = result
            job.attemptsMade = job.attemptsMade + 1
            self.emit("completed", job, result)
        except (bullmq.DelayedError, bullmq.WaitingChildrenError):
            return None
        except Exception as err:
            await self._fail(job, err, token)
            return None
        finally:
            self.jobs.discard((job, token))
            self.lockManager.untrack_job(job.id)
        return await self._next_from(finished["result"], token) if fetch_next else None

    async def _fail(self, job: Any, err: Exception, token: str) -> None:
        try:
            if not self.forceClosing:
                await job.moveToFailed(err, token)
            self.emit("failed", job, err)
        except Exception as error:
            self.emit("error", error, job)

    async def _next_from(self, raw: Any, token: str) -> Any:
        data, job_id, limit_until, delay_until = raw or (None, None, 0, 0)
        job = await self.nextJobFromJobData(data, job_id, int(limit_until or 0),
                                            int(delay_until or 0), token)
        if job is not None:
            self.emit("active", job, "waiting")
        return job


def _use_pipelining_client(worker: Any, connection: dict[str, Any]) -> None:
    """Swap the worker's single-connection command client for a pipelining one.

    The blocking BZPOPMIN client stays the port's own; scripts are registered again on the
    new client, which the port's connection, scripts and jobs all reach through these handles.
    """
    port_connection = worker.backend.connection
    client = PipeliningRedis(decode_responses=True, retry=Retry(ExponentialBackoff(cap=20, base=1),
                                                                20),
                             retry_on_error=[BusyLoadingError, RedisConnectionError,
                                             RedisTimeoutError], **connection)
    port_connection.conn = client
    port_connection.commands = {}
    port_connection.loadCommands()
    worker.backend.scripts.redisClient = client
    worker.backend.scripts.commands = port_connection.commands
    worker.client = client


class QueueWorker:
    """Consumes one queue with a processor; the port's worker is built inside the running loop."""

    def __init__(self, url: str, queue_name: str, prefix: str, options: WorkerOptions,
                 processor: Processor) -> None:
        self._port_opts = options.to_port(connection_kwargs(url), prefix)
        self._queue_name = queue_name
        self._processor = processor
        self._worker: Any = None
        self._task: asyncio.Task[None] | None = None

    async def _process(self, job: Any, _token: str) -> Any:
        try:
            return await self._processor(ActiveJob(job))
        except UnrecoverableJobError as exc:
            raise bullmq.UnrecoverableError(str(exc)) from exc

    def start(self, on_error: Callable[[BaseException], None]) -> None:
        asyncio.get_running_loop()  # refuses, loudly, to be built outside a running loop
        self._worker = _PortWorker(self._queue_name, self._process, self._port_opts)
        _use_pipelining_client(self._worker, self._port_opts["connection"])
        self._worker.on("error", on_error)
        self._task = asyncio.create_task(self._worker.run(), name="bullpen-worker")

    @property
    def worker_id(self) -> str:
        return str(self._worker.id) if self._worker else ""

    @property
    def active_job_ids(self) -> list[str]:
        return [str(job.id) for job, _token in self._worker.jobs] if self._worker else []

    async def close(self, timeout_s: float) -> bool:
        """Stop taking jobs, wait for active ones; False if some were abandoned at the timeout."""
        if self._worker is None:
            return True
        closing = asyncio.ensure_future(self._worker.close())
        done, _ = await asyncio.wait({closing}, timeout=timeout_s)
        if not done:
            # Abandoned jobs keep their lock until it expires; the stalled check re-queues them.
            self._worker.forceClosing = True
            self._worker.cancelProcessing()
            await asyncio.wait({closing}, timeout=2)
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=2)
        await self._hand_over_marker()
        return bool(done)

    async def _hand_over_marker(self) -> None:
        """Put back the delayed-job marker this worker took, so an idle peer wakes on time.

        A worker that popped BullMQ's marker is the only one that knows when the next delayed job
        is due; without this, peers find out only at their next poll, up to seconds late.
        """
        block_until = int(self._worker.blockUntil or 0)
        if block_until <= now_ms():
            return
        with contextlib.suppress(Exception):
            await one_shot(self._port_opts["connection"], "ZADD",
                                self._worker.keys["marker"], block_until, "1")
