"""Client: the asyncio API an app uses to enqueue jobs, follow them and create exports."""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from bullpen.adapter import JobOptions, QueueClient, probe
from bullpen.cancellation import request_cancel
from bullpen.client.app_exports import Exports
from bullpen.client.job import Job, JobInfo, JobSpec
from bullpen.client.waiter import JobWaiter
from bullpen.definitions.task import Registry
from bullpen.errors import ClientError, JobDataError, RedisUnavailableError, UnknownTaskError
from bullpen.exports.exporters import Exporter
from bullpen.job_ids import check_job_id
from bullpen.loader import importable_registry, load_exporters, load_registry
from bullpen.producer import check_data, enqueue, enqueue_bulk, job_options, route
from bullpen.queue_names import check_queue_name
from bullpen.redis_tls import describe
from bullpen.redis_url import redact, resolve_url
from bullpen.settings import Settings, load_settings
from bullpen.telemetry import telemetry_for

MAX_PRIORITY = 2_097_152  # BullMQ's highest priority (2^21)
POLL_INTERVAL_S = 5.0
# The first Client opened on each event loop: what `@task`'s `.enqueue()` uses by default.
_opened: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Client] = (
    weakref.WeakKeyDictionary())


def resolve_settings(settings: Settings | None, redis_url: str | None,
                     queue: str | None) -> Settings:
    """The worker's settings (environment and .env), or `settings`, with explicit overrides."""
    updates = {key: value for key, value in (("worker_redis_url", redis_url),
                                              ("worker_default_queue", queue)) if value}
    if settings is None:
        return load_settings(**updates)
    return settings.model_copy(update=updates) if updates else settings


class Client:
    """Enqueue jobs, wait for their results and create exports, from asyncio code.

    Settings come from the environment and `.env`, as the worker reads them (the embedded
    server included), unless `settings` is given; `redis_url` and `queue` (the default queue)
    override one each. Connections open on first use (or `open()` / `async with`) and stay open
    until `close()`: per queue used, one connection for commands and, once something waits
    there, one for BullMQ's events stream, shared by every call and every wait.

    Concurrency: one Client serves any number of concurrent tasks and requests on the event
    loop it was opened on; it is not thread-safe and not for use from another event loop
    (threads and sync frameworks use `SyncClient`).

    `check_tasks`: None (default) checks task names against the registry when the app's tasks
    (BULLPEN_APP) are importable here and skips the check otherwise; True requires them; False
    never checks (a Node worker may own the task).
    """

    def __init__(self, settings: Settings | None = None, *, redis_url: str | None = None,
                 queue: str | None = None, check_tasks: bool | None = None,
                 poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self.settings = resolve_settings(settings, redis_url, queue)
        self._telemetry = telemetry_for(self.settings)
        self._check_tasks = check_tasks
        self._poll_interval_s = poll_interval_s
        self._url: str | None = None
        self._queues: dict[str, QueueClient] = {}
        self._waiters: dict[str, JobWaiter] = {}
        self._registry: Registry | None = None
        self.exporters: Mapping[str, Exporter] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False
        self.exports = Exports(self)

    async def open(self) -> Self:
        """Connect (starting the embedded server if that is the configuration); idempotent."""
        self._check_loop()
        if self._url is not None:
            return self
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if self._url is None:
                await self._connect()
        return self

    async def _connect(self) -> None:
        url = await asyncio.to_thread(resolve_url, self.settings)
        try:
            await probe(url)
        except Exception as exc:
            # The queue's own client would retry a dead server for minutes inside a request.
            raise RedisUnavailableError(
                f"Redis at {redact(url)} does not answer ({describe(exc, url)}); check "
                "WORKER_REDIS_URL and that the server runs (bullpen doctor tells more)") from None
        await asyncio.to_thread(self._load_definitions)
        self._url = url
        self._on(self.settings.worker_default_queue)
        _opened.setdefault(asyncio.get_running_loop(), self)

    def _on(self, queue: str) -> QueueClient:
        """The client of `queue`, made on first use (connections open lazily)."""
        found = self._queues.get(queue)
        if found is None:
            assert self._url is not None
            found = self._queues[queue] = QueueClient(
                self._url, queue, self.settings.worker_prefix, self.settings.enqueue_wait)
        return found

    def _load_definitions(self) -> None:
        app = self.settings.bullpen_app
        if self._check_tasks is False:
            return
        self._registry = (load_registry(app) if self._check_tasks
                          else importable_registry(app))
        if self._registry is not None:
            self.exporters = load_exporters(app)

    @classmethod
    def current(cls) -> Client:
        """The first Client opened on the running event loop and still open."""
        found = _opened.get(asyncio.get_running_loop())
        if found is None or found._closed:
            raise ClientError(
                "no bullpen Client is open on this event loop: open one at start-up (`async "
                "with bullpen.Client() as client:` in your app's lifespan) or pass client=")
        return found

    async def close(self) -> None:
        """Close the connections; waits still pending end with CancelledError."""
        self._closed = True
        if self._loop is not None and _opened.get(self._loop) is self:
            del _opened[self._loop]
        for waiter in self._waiters.values():
            await waiter.close()
        for queue in self._queues.values():
            await queue.close()
        self._queues.clear()
        self._waiters.clear()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    @property
    def queue_name(self) -> str:
        """The default queue: where jobs go unless their task or `queue=` names another."""
        return self.settings.worker_default_queue

    def queue_of(self, task: str) -> str:
        """The queue a job for `task` goes to: its declared queue (when the app's tasks are
        importable here; they are loaded when the client opens), else the default queue."""
        return route(self._registry, task, self.settings.worker_default_queue)

    async def enqueue(self, task: str, data: Any = None, *, delay_ms: int = 0,
                      job_id: str | None = None, attempts: int | None = None,
                      priority: int | None = None, queue: str | None = None) -> Job:
        """Add a job for `task` with JSON `data` (None means {}); returns its handle.

        It goes to `queue` if given, else to the task's own queue (`@task(queue=…)` or the
        app's `task_queues`, known when the app's tasks are importable here), else the default
        queue. Checked before anything is written, as `bullpen enqueue` checks: the task name
        (see `check_tasks`), the data (JSON only, within JOB_MAX_DATA_BYTES), the options.
        Defaults for attempts, backoff and retention are the worker's settings. A `job_id` that
        already exists adds nothing and returns a handle to the existing job (BullMQ's dedupe).
        """
        await self._ready()
        target = route(self._registry, task, self.settings.worker_default_queue, queue)
        options = self._options(task, delay_ms, job_id, attempts, priority)
        payload = {} if data is None else data
        added = await enqueue(self._on(target), self._registry, task, payload, options,
                              self.settings.job_max_data_bytes, self._telemetry)
        return Job(self, added, task, target)

    async def enqueue_many(self, jobs: Iterable[JobSpec | tuple[str, Any]]) -> list[Job]:
        """Add several jobs, each to its queue, in one round trip per queue (one MULTI/EXEC
        each); all are checked first, so a bad one adds none. Items are JobSpec or (task, data)
        pairs."""
        await self._ready()
        specs = [item if isinstance(item, JobSpec) else JobSpec(*item) for item in jobs]
        default = self.settings.worker_default_queue
        batches: dict[str, list[tuple[int, tuple[str, Any, JobOptions]]]] = {}
        for index, spec in enumerate(specs):
            payload = {} if spec.data is None else spec.data
            self._check_task(spec.task)
            check_data(spec.task, payload, self.settings.job_max_data_bytes)
            target = route(self._registry, spec.task, default, spec.queue)
            batches.setdefault(target, []).append((index, (spec.task, payload, self._options(
                spec.task, spec.delay_ms, spec.job_id, spec.attempts, spec.priority))))
        jobs_out: list[Job | None] = [None] * len(specs)
        for target, batch in batches.items():
            ids = await enqueue_bulk(self._on(target), [item for _, item in batch],
                                     self._telemetry)
            for (index, _), job_id in zip(batch, ids, strict=True):
                jobs_out[index] = Job(self, job_id, specs[index].task, target)
        return [job for job in jobs_out if job is not None]

    async def get_job(self, job_id: str, *, queue: str | None = None) -> JobInfo | None:
        """A snapshot of the job (state, data, result or failure, attempts, times), or None;
        looked up in `queue` (default: the default queue)."""
        record = await (await self._ready(queue)).get_job(job_id)
        return JobInfo.of(record, queue or self.queue_name) if record is not None else None

    async def cancel(self, job_id: str, reason: str | None = None, *,
                     queue: str | None = None) -> bool:
        """Cancel a running (active) job of `queue` (default: the default queue), from any
        process; False when it is not running.

        The bullpen worker running it signals its handler (`ctx.cancelled`; an `async def`
        handler's task is cancelled where it awaits). The job then fails with the reason
        "cancelled" (or "cancelled: <reason>") and is never retried, even if the handler runs
        on and returns. A waiting or delayed job is not running: remove it instead. A job a
        Node BullMQ worker holds is not cancelled (Node workers do not listen).
        """
        return await request_cancel(await self._ready(queue), job_id, reason)

    def job(self, job_id: str, *, queue: str | None = None) -> Job:
        """A handle to an existing job by id (for example one enqueued by an earlier request),
        in `queue` (default: the default queue)."""
        return Job(self, job_id, queue=queue)

    async def _outcome(self, job_id: str, timeout_s: float | None, queue: str | None = None
                       ) -> tuple[str, Any, str | None]:
        client = await self._ready(queue)
        waiter = self._waiters.get(client.name)
        if waiter is None:
            assert self._url is not None
            waiter = self._waiters[client.name] = JobWaiter(
                client.connection, client.keys, self._poll_interval_s)
        outcome = await waiter.wait(job_id, timeout_s)
        return outcome.state, outcome.result, outcome.failed_reason

    async def _ready(self, queue: str | None = None) -> QueueClient:
        if self._closed:
            raise ClientError("this bullpen Client is closed; open a new one")
        await self.open()
        if queue is None:
            return self._on(self.settings.worker_default_queue)
        return self._on(check_queue_name(queue, "queue"))

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise ClientError("a bullpen Client belongs to the event loop it was opened on; "
                              "open one Client per event loop, or use SyncClient from threads")

    def _check_task(self, task: str) -> None:
        if self._registry is not None and task not in self._registry:
            raise UnknownTaskError(task, self._registry.names())

    def _options(self, task: str, delay_ms: int, job_id: str | None, attempts: int | None,
                 priority: int | None) -> JobOptions:
        _check_int(task, "delay_ms", delay_ms, 0, "milliseconds, 0 for now")
        if attempts is not None:
            _check_int(task, "attempts", attempts, 1, "leave it out for WORKER_DEFAULT_ATTEMPTS")
        if priority is not None:
            _check_int(task, "priority", priority, 0, f"0 (none) to {MAX_PRIORITY}, 1 is highest",
                       MAX_PRIORITY)
        if job_id is not None:
            if not isinstance(job_id, str) or not job_id:
                raise JobDataError(f"job_id={job_id!r} for task {task!r}: expected a non-empty "
                                   "string (leave it out for an auto-numbered id)")
            check_job_id(job_id)
        return dataclasses.replace(job_options(self.settings), delay_ms=delay_ms, job_id=job_id,
                                   attempts=attempts or self.settings.worker_default_attempts,
                                   priority=priority or 0)


def _check_int(task: str, name: str, value: object, low: int, hint: str,
               high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        raise JobDataError(f"{name}={value!r} for task {task!r}: expected an integer >= {low}"
                           f"{f' and <= {high}' if high is not None else ''} ({hint})")
