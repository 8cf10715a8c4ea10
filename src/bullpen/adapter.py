"""The one module that speaks to the BullMQ Python port: PEP 8 wrappers and its measured fixes.

Fixes applied here (each has a regression test in tests/test_adapter.py):
- blocking waits never time out client-side (redis-py >= 8 defaults socket_timeout to 5 s);
- a rate-limited worker sleeps the rest of the limiter window, not the 5 s drain delay;
- block timeouts keep their milliseconds (the port rounds them up to whole seconds until it
  has asked the server's version on the blocking connection);
- workers are built inside a running event loop, from validated options;
- cron patterns are computed by bullpen's own cron module (Node's dialect).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import bullmq
from bullmq.job_scheduler import JobScheduler
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, OutOfMemoryError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bullpen import cron
from bullpen.errors import RedisFullError, SettingsError, UnrecoverableJobError
from bullpen.pipelining import PipeliningRedis

JOB_STATES = ("waiting", "active", "delayed", "prioritized", "completed", "failed", "paused")


def connection_kwargs(url: str) -> dict[str, Any]:
    """redis-py keyword arguments for a redis://, rediss:// or unix:// URL; reads never time out."""
    parts = urlsplit(url)
    kwargs: dict[str, Any] = {
        "socket_timeout": None,
        "socket_connect_timeout": 5,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    if parts.scheme == "unix":
        kwargs["unix_socket_path"] = parts.path
        return kwargs
    if parts.scheme not in ("redis", "rediss"):
        raise SettingsError(
            f"WORKER_REDIS_URL: unsupported scheme {parts.scheme!r} "
            "(expected redis://host:port/db, rediss://… or unix:///path/to/socket)"
        )
    kwargs.update(host=parts.hostname or "localhost", port=parts.port or 6379)
    db = parts.path.strip("/")
    kwargs["db"] = int(db) if db.isdigit() else 0
    if parts.scheme == "rediss":
        kwargs["ssl"] = True
    return kwargs


async def probe(url: str, timeout_s: float = 2.0) -> None:
    """One PING without the port's retries (20 of them, backing off to 20 s each); raises."""
    import redis.asyncio as aioredis

    kwargs = connection_kwargs(url) | {"socket_connect_timeout": timeout_s,
                                       "socket_timeout": timeout_s}
    client = aioredis.Redis(**kwargs)
    try:
        await client.ping()
    finally:
        await client.aclose()


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Typed worker options; `to_port` is the only place their camelCase names appear."""

    concurrency: int = 5
    limiter_max: int = 0
    limiter_duration_ms: int = 1000
    lock_duration_ms: int = 30_000
    stalled_interval_ms: int = 30_000
    max_stalled_count: int = 1
    drain_delay_s: float = 5.0
    run_retry_delay_ms: int = 1000

    def __post_init__(self) -> None:
        for name in ("concurrency", "limiter_duration_ms", "lock_duration_ms",
                     "stalled_interval_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SettingsError(f"worker option {name}={value!r}: expected an integer >= 1")
        if self.limiter_max < 0 or self.max_stalled_count < 0:
            raise SettingsError("worker options limiter_max and max_stalled_count must be >= 0")

    def to_port(self, connection: dict[str, Any], prefix: str) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "connection": connection,
            "prefix": prefix,
            "autorun": False,
            "concurrency": self.concurrency,
            "lockDuration": self.lock_duration_ms,
            "stalledInterval": self.stalled_interval_ms,
            "maxStalledCount": self.max_stalled_count,
            "drainDelay": self.drain_delay_s,
            "runRetryDelay": self.run_retry_delay_ms,
        }
        if self.limiter_max > 0:
            opts["limiter"] = {"max": self.limiter_max, "duration": self.limiter_duration_ms}
        return opts


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options for enqueueing; mapped to BullMQ's names in `to_port`."""

    attempts: int = 1
    backoff_type: str = "exponential"
    backoff_delay_ms: int = 1000
    delay_ms: int = 0
    job_id: str | None = None
    priority: int = 0
    keep_completed: int = 1000
    keep_failed: int = 5000

    def to_port(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "attempts": self.attempts,
            "backoff": {"type": self.backoff_type, "delay": self.backoff_delay_ms},
            "removeOnComplete": {"count": self.keep_completed},
            "removeOnFail": {"count": self.keep_failed},
        }
        if self.delay_ms:
            opts["delay"] = self.delay_ms
        if self.job_id:
            opts["jobId"] = self.job_id
        if self.priority:
            opts["priority"] = self.priority
        return opts


@dataclass(slots=True)
class JobRecord:
    """A job as bullpen shows it: PEP 8 names over the port's job hash."""

    id: str
    name: str
    data: Any
    attempts_made: int
    attempts_allowed: int
    timestamp_ms: int
    processed_on_ms: int | None
    finished_on_ms: int | None
    delay_ms: int
    failed_reason: str | None
    stacktrace: list[str]
    return_value: Any
    progress: Any
    scheduler_id: str | None
    state: str | None = None

    @property
    def duration_ms(self) -> int | None:
        if self.processed_on_ms and self.finished_on_ms:
            return self.finished_on_ms - self.processed_on_ms
        return None

    @property
    def display_name(self) -> str:
        """The seed logs scheduled jobs by their schedule name, one-off jobs by id."""
        return self.scheduler_id or self.id


def _record(job: Any, state: str | None = None) -> JobRecord:
    return JobRecord(
        id=str(job.id),
        name=job.name,
        data=job.data,
        attempts_made=int(job.attemptsMade),
        attempts_allowed=int(job.opts.get("attempts") or 1),
        timestamp_ms=int(job.timestamp),
        processed_on_ms=int(job.processedOn) or None,
        finished_on_ms=int(job.finishedOn) or None,
        delay_ms=int(job.delay or 0),
        failed_reason=job.failedReason,
        stacktrace=list(job.stacktrace or []),
        return_value=job.returnvalue,
        progress=job.progress,
        scheduler_id=job.repeatJobKey,
        state=state,
    )


class ActiveJob:
    """The job a handler is running: its record plus log and progress writers."""

    __slots__ = ("_job", "record")

    def __init__(self, job: Any) -> None:
        self._job = job
        self.record = _record(job, "active")

    async def log(self, line: str) -> None:
        await self._job.log(line)

    async def update_progress(self, progress: Any) -> None:
        await self._job.updateProgress(progress)


Processor = Callable[[ActiveJob], Awaitable[Any]]


def _repeat_strategy(millis: int, opts: dict[str, Any]) -> int | None:
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
            self._job_scheduler = JobScheduler(self, repeat_strategy=_repeat_strategy)
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
        return bool(done)


class QueueClient:
    """Producer and inspector for one queue (enqueue, list, counts, schedulers, actions)."""

    def __init__(self, url: str, queue_name: str, prefix: str = "bull") -> None:
        self.name = queue_name
        self.prefix = prefix
        self._queue = bullmq.Queue(
            queue_name, {"connection": connection_kwargs(url), "prefix": prefix}
        )
        self._schedulers = JobScheduler(self._queue, repeat_strategy=_repeat_strategy)

    @property
    def redis(self) -> Any:
        """The raw redis-py client, for bullpen's own keys (heartbeats, locks, exports)."""
        return self._queue.client

    def key(self, suffix: str) -> str:
        return f"{self.prefix}:{self.name}:{suffix}"

    async def close(self) -> None:
        await self._queue.close()

    async def ping(self) -> bool:
        return bool(await self._queue.client.ping())

    async def add(self, name: str, data: Any, options: JobOptions) -> str:
        try:
            job = await self._queue.add(name, data, options.to_port())
        except Exception as exc:
            # redis-py turns Redis's "OOM ..." reply into OutOfMemoryError and drops the prefix.
            if isinstance(exc, OutOfMemoryError) or "OOM" in str(exc):
                raise RedisFullError(
                    f"Redis is full (maxmemory reached): job {name!r} was not enqueued; "
                    "free memory or raise maxmemory"
                ) from exc
            raise
        return str(job.id)

    async def add_bulk(self, jobs: Sequence[tuple[str, Any]], options: JobOptions) -> list[str]:
        """Add (task, data) pairs in one MULTI/EXEC pipeline; returns their job ids."""
        opts = options.to_port()
        added = await self._queue.addBulk([{"name": name, "data": data, "opts": opts}
                                           for name, data in jobs])
        return [str(job.id) for job in added]

    async def get_job(self, job_id: str) -> JobRecord | None:
        # State first: a job that finishes in between then shows its result with an older state,
        # never "completed" without its return value.
        state = await self._queue.getJobState(job_id)
        job = await self._queue.getJob(job_id)
        if job is None:
            return None
        return _record(job, state)

    async def get_jobs(self, state: str, start: int = 0, end: int = 49) -> list[JobRecord]:
        jobs = await self._queue.getJobs([state], start, end, state in ("waiting", "paused"))
        return [_record(job, state) for job in jobs if job is not None]

    async def get_counts(self, states: Sequence[str] = JOB_STATES) -> dict[str, int]:
        counts = await self._queue.getJobCounts(*states)
        return {state: int(counts.get(state, 0)) for state in states}

    async def get_logs(self, job_id: str) -> list[str]:
        return list((await self._queue.getJobLogs(job_id))["logs"])

    async def retry_job(self, job_id: str) -> None:
        job = await self._queue.getJob(job_id)
        if job is not None:
            await job.retry("failed")

    async def retry_all_failed(self) -> None:
        await self._queue.retryJobs({"state": "failed", "count": 1000})

    async def remove_job(self, job_id: str) -> None:
        await self._queue.remove(job_id)

    async def promote_job(self, job_id: str) -> None:
        job = await self._queue.getJob(job_id)
        if job is not None:
            await job.promote()

    async def pause(self) -> None:
        await self._queue.pause()

    async def resume(self) -> None:
        await self._queue.resume()

    async def is_paused(self) -> bool:
        return bool(await self._queue.isPaused())

    async def count_finished_since(self, state: str, since_ms: int) -> int:
        """Jobs in `completed` or `failed` that finished at or after `since_ms` (retained only)."""
        if state not in ("completed", "failed"):
            raise ValueError(f"count_finished_since: state {state!r} is not completed or failed")
        # BullMQ scores its completed and failed sets by finishedOn.
        return int(await self._queue.client.zcount(self.key(state), since_ms, "+inf"))

    async def get_schedulers(self) -> list[SchedulerRecord]:
        raw = await self._schedulers.getJobSchedulers(0, -1, True)
        return [SchedulerRecord.from_port(item) for item in raw]

    async def get_scheduler(self, scheduler_id: str) -> SchedulerRecord | None:
        if not await self._queue.client.exists(self.key(f"repeat:{scheduler_id}")):
            return None  # the port's getScheduler fails to unpack a missing record
        raw = await self._schedulers.getScheduler(scheduler_id)
        return SchedulerRecord.from_port(raw) if raw else None

    async def upsert_scheduler(self, scheduler_id: str, task_name: str, data: Any, *,
                               pattern: str | None, every_ms: int | None, tz: str | None,
                               options: JobOptions) -> None:
        repeat: dict[str, Any] = {"pattern": pattern} if pattern else {"every": every_ms}
        if tz:
            repeat["tz"] = tz
        await self._schedulers.upsertJobScheduler(
            scheduler_id, repeat, task_name, data, options.to_port()
        )

    async def remove_scheduler(self, scheduler_id: str) -> None:
        await self._schedulers.removeJobScheduler(scheduler_id)


@dataclass(slots=True)
class SchedulerRecord:
    """A job scheduler as registered in Redis."""

    id: str
    task_name: str
    pattern: str | None
    every_ms: int | None
    tz: str | None
    next_ms: int | None
    iteration_count: int
    data: Any = None
    raw_opts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_port(cls, raw: dict[str, Any]) -> SchedulerRecord:
        template = raw.get("template") or {}
        return cls(
            id=str(raw.get("key")),
            task_name=str(raw.get("name") or ""),
            pattern=raw.get("pattern"),
            every_ms=raw.get("every"),
            tz=raw.get("tz"),
            next_ms=int(raw["next"]) if raw.get("next") is not None else None,
            iteration_count=int(raw.get("iterationCount") or 0),
            data=template.get("data"),
            raw_opts=template.get("opts") or {},
        )


def now_ms() -> int:
    return int(time.time() * 1000)
