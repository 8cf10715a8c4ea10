"""SyncClient: the same API without `await`, for Django, Flask, scripts and any thread."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from bullpen.client.app_exports import Exports, download_url
from bullpen.client.async_client import POLL_INTERVAL_S, Client
from bullpen.client.job import Job, JobInfo, JobSpec, JobState
from bullpen.errors import ClientError
from bullpen.exports.service import ExportService, IssuedToken, Source
from bullpen.exports.serving import Download
from bullpen.exports.store import Export
from bullpen.settings import Settings

T = TypeVar("T")


class SyncClient:
    """Enqueue jobs, wait for their results and create exports, from synchronous code.

    Takes the same arguments as `Client` and reads the same settings. It runs one `Client` on
    an event loop in a background thread of its own, so its connections are shared by every
    call: one SyncClient per process is safe to use from any number of threads at once (a
    Django or Flask app's request threads). Do not call it from inside async code, which
    would block that event loop: use `Client` there.
    """

    def __init__(self, settings: Settings | None = None, *, redis_url: str | None = None,
                 queue: str | None = None, check_tasks: bool | None = None,
                 poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self._client = Client(settings, redis_url=redis_url, queue=queue,
                              check_tasks=check_tasks, poll_interval_s=poll_interval_s)
        self.settings = self._client.settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.exports = SyncExports(self, self._client.exports)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the client's loop and return its result (for async-only APIs)."""
        try:
            loop = self._start()
        except ClientError:
            coro.close()
            raise
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise ClientError("SyncClient called from its own event loop; await Client instead")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise ClientError("this bullpen SyncClient is closed; make a new one")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, daemon=True,
                                                name="bullpen-client")
                self._thread.start()
                self._loop = loop
            return self._loop

    def open(self) -> Self:
        """Connect now (otherwise the first call does); starts the embedded server if need be."""
        self.run(self._client.open())
        return self

    def close(self) -> None:
        """Close the connections and stop the background thread; idempotent."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            self._closed = True
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._client.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    @property
    def queue_name(self) -> str:
        return self._client.queue_name

    def queue_of(self, task: str) -> str:
        """As `Client.queue_of` (once the client is open, the app's declared queues count)."""
        self.open()
        return self._client.queue_of(task)

    def enqueue(self, task: str, data: Any = None, *, delay_ms: int = 0,
                job_id: str | None = None, attempts: int | None = None,
                priority: int | None = None, queue: str | None = None) -> SyncJob:
        """As `Client.enqueue`: to its task's queue (or `queue`), checked first, added once,
        a handle back."""
        job = self.run(self._client.enqueue(task, data, delay_ms=delay_ms, job_id=job_id,
                                            attempts=attempts, priority=priority, queue=queue))
        return SyncJob(self, job)

    def enqueue_many(self, jobs: Iterable[JobSpec | tuple[str, Any]]) -> list[SyncJob]:
        """As `Client.enqueue_many`: all checked, then added in one round trip."""
        return [SyncJob(self, job) for job in self.run(self._client.enqueue_many(list(jobs)))]

    def get_job(self, job_id: str, *, queue: str | None = None) -> JobInfo | None:
        return self.run(self._client.get_job(job_id, queue=queue))

    def job(self, job_id: str, *, queue: str | None = None) -> SyncJob:
        return SyncJob(self, self._client.job(job_id, queue=queue))

    def cancel(self, job_id: str, reason: str | None = None, *,
               queue: str | None = None) -> bool:
        """As `Client.cancel`: signal the running job's handler; False if it is not running."""
        return self.run(self._client.cancel(job_id, reason, queue=queue))

    @classmethod
    def default(cls) -> SyncClient:
        """The process-wide client `task.enqueue_sync` uses: made from the settings on first
        use, closed at exit."""
        with _default_lock:
            current = _default.get("client")
            if current is None or current._closed:
                current = _default["client"] = cls()
                atexit.register(current.close)
            return current


_default: dict[str, SyncClient] = {}
_default_lock = threading.Lock()


class SyncJob:
    """A job handle for synchronous code; the same methods as `Job`, without `await`."""

    __slots__ = ("_client", "_job")

    def __init__(self, client: SyncClient, job: Job) -> None:
        self._client = client
        self._job = job

    def __repr__(self) -> str:
        return f"SyncJob(id={self.id!r}, task={self.task!r}, queue={self.queue!r})"

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def task(self) -> str | None:
        return self._job.task

    @property
    def queue(self) -> str | None:
        return self._job.queue

    def wait(self, timeout: float | None = None) -> Any:
        """The result; JobFailed on failure, TimeoutError after `timeout` seconds."""
        return self._client.run(self._job.wait(timeout))

    def status(self) -> JobState:
        return self._client.run(self._job.status())

    def info(self) -> JobInfo:
        return self._client.run(self._job.info())

    def cancel(self, reason: str | None = None) -> bool:
        return self._client.run(self._job.cancel(reason))


class SyncExports:
    """`SyncClient.exports`: `Client.exports` without `await` (file work runs in the caller)."""

    def __init__(self, client: SyncClient, exports: Exports) -> None:
        self._client = client
        self._exports = exports

    @property
    def service(self) -> ExportService:
        return self._exports.service

    def create(self, source: Source, *, filename: str, format: str | None = None,
               content_type: str | None = None, label: str | None = None,
               owner: str | None = None) -> Export:
        export, _token = self.service.create(filename, source, format=format,
                                             content_type=content_type, label=label, owner=owner)
        return export

    def token(self, export: Export | str, *, expires_minutes: float | None = None
              ) -> IssuedToken:
        return self._exports.token(export, expires_minutes=expires_minutes)

    def download_url(self, export: Export | str, *, base_url: str,
                     expires_minutes: float | None = None) -> str:
        return download_url(base_url, self.token(export, expires_minutes=expires_minutes))

    def request(self, exporter: str, params: Mapping[str, Any] | None = None, *,
                format: str = "csv", filename: str | None = None, label: str | None = None,
                owner: str | None = None) -> SyncJob:
        job = self._client.run(self._exports.request(exporter, params, format=format,
                                                     filename=filename, label=label,
                                                     owner=owner))
        return SyncJob(self._client, job)

    def serve(self, token: str, *, range_header: str | None = None,
              if_range: str | None = None, head: bool = False) -> Download:
        return self._exports.serve(token, range_header=range_header, if_range=if_range,
                                   head=head)
