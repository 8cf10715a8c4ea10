"""`@task`: a handler registered under a name, with `.enqueue()` / `.enqueue_sync()` on it.

The name stays the job's identity in Redis, so a Node producer (or `bullpen enqueue`) can add
the same job by name; the decorator only saves the app from spelling the name twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from bullpen.client.async_client import Client
from bullpen.client.job import Job
from bullpen.client.sync_client import SyncClient, SyncJob
from bullpen.definitions.declared import DeclaredTask
from bullpen.definitions.task import DEFAULT_MAX_JOBS_PER_CHILD
from bullpen.definitions.task import isolated as isolate

P = ParamSpec("P")
R = TypeVar("R")


class TaskFunction(DeclaredTask[P, R]):
    """A task handler that knows its name. Calling it runs the handler here, now; `enqueue`
    adds a job for a worker to run."""

    async def enqueue(self, data: Any = None, *, delay_ms: int = 0, job_id: str | None = None,
                      attempts: int | None = None, priority: int | None = None,
                      client: Client | None = None, queue: str | None = None) -> Job:
        """`Client.enqueue` for this task, through `client` or the Client open on this event
        loop (the one the app opened at start-up), to `queue` or the task's own."""
        return await (client or Client.current()).enqueue(
            self.name, data, delay_ms=delay_ms, job_id=job_id, attempts=attempts,
            priority=priority, queue=queue or self.queue)

    def enqueue_sync(self, data: Any = None, *, delay_ms: int = 0, job_id: str | None = None,
                     attempts: int | None = None, priority: int | None = None,
                     client: SyncClient | None = None, queue: str | None = None) -> SyncJob:
        """`SyncClient.enqueue` for this task, through `client` or the process-wide
        `SyncClient.default()` (made from the settings on first use), to `queue` or the task's
        own."""
        return (client or SyncClient.default()).enqueue(
            self.name, data, delay_ms=delay_ms, job_id=job_id, attempts=attempts,
            priority=priority, queue=queue or self.queue)


def task(name: str, *, queue: str | None = None, isolated: bool = False,
         max_jobs_per_child: int = DEFAULT_MAX_JOBS_PER_CHILD
         ) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
    """Register the decorated handler as task `name` (in your app's tasks module).

    The handler takes `()`, `(data)` or `(data, ctx)`, as in `task_handlers`; the worker finds
    every `@task` declared in the BULLPEN_APP package when it loads `<app>.tasks`.
    `queue` puts its jobs (and its schedules) on that queue instead of the default queue: a
    worker consumes it with `bullpen worker --queue NAME`. `isolated=True` runs it in a child
    process, as `bullpen.isolated(handler)` does.
    """

    def register(handler: Callable[P, R]) -> TaskFunction[P, R]:
        run_as = (isolate(handler, max_jobs_per_child=max_jobs_per_child) if isolated
                  else None)
        return TaskFunction(name, handler, run_as, queue)

    return register
