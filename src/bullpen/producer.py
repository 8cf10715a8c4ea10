"""Enqueueing jobs from an app or the CLI, with the task name, data and job id checked first."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bullpen.adapter import JobOptions, QueueClient
from bullpen.definitions.task import Registry
from bullpen.errors import JobDataError, UnknownTaskError
from bullpen.job_ids import check_job_id
from bullpen.queue_names import check_queue_name
from bullpen.settings import Settings
from bullpen.shown import MAX_SHOWN_DEPTH, depth

if TYPE_CHECKING:
    from bullpen.telemetry.tracing import Telemetry

# Deeper data is refused on enqueue; up to this depth the dashboard and CLI show all of it.
MAX_DATA_DEPTH = MAX_SHOWN_DEPTH


def job_options(settings: Settings) -> JobOptions:
    """Defaults for every job bullpen enqueues or schedules."""
    return JobOptions(
        attempts=settings.worker_default_attempts,
        backoff_type=settings.worker_backoff_type,
        backoff_delay_ms=settings.worker_backoff_delay_ms,
        keep_completed=settings.worker_keep_completed,
        keep_failed=settings.worker_keep_failed,
    )


def route(registry: Registry | None, task: str, default_queue: str,
          queue: str | None = None) -> str:
    """The queue a job for `task` goes to: `queue` when given, else the task's declared queue
    (known when the registry is), else the default queue."""
    if queue is not None:
        return check_queue_name(queue, f"job for task {task!r}")
    declared = registry.queue_of(task) if registry is not None else None
    return declared or default_queue


def check_data(task: str, data: Any, max_bytes: int) -> None:
    """Raise JobDataError unless `data` is JSON-serialisable, within `max_bytes` and nested at
    most MAX_DATA_DEPTH levels deep."""
    nesting = depth(data)
    if nesting > MAX_DATA_DEPTH:
        raise JobDataError(
            f"job data for task {task!r} is nested {nesting} levels deep, over the limit of "
            f"{MAX_DATA_DEPTH}; flatten it (dashboards and Python's JSON decoder choke on deeper "
            "data)"
        )
    try:
        encoded = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JobDataError(
            f"job data for task {task!r} is not JSON-serialisable: {exc}; pass only dicts, lists, "
            "strings, finite numbers, booleans and None (e.g. a datetime as an ISO string)"
        ) from None
    size = len(encoded.encode())
    if size > max_bytes:
        raise JobDataError(
            f"job data for task {task!r} is {size} bytes, over the limit of {max_bytes} "
            "(JOB_MAX_DATA_BYTES); store large payloads elsewhere and pass a reference"
        )


def parse_json_data(text: str) -> Any:
    """`--data` from the command line: JSON, with the parse error's position on failure."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobDataError(
            f"--data is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(got {text!r}); example: --data '{{\"key\": \"value\"}}'"
        ) from None


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What `enqueue_job` did: the job's id, and whether it was added or already existed."""

    id: str
    created: bool
    state: str | None = None


async def enqueue_job(client: QueueClient, registry: Registry | None, task: str, data: Any,
                      options: JobOptions, max_bytes: int,
                      telemetry: Telemetry | None = None) -> Enqueued:
    """Add a job for `task`; nothing is written unless the task is known, the data valid and a
    custom job id acceptable. A custom id that exists adds nothing (BullMQ's dedupe).

    With `telemetry`, the add runs in a PRODUCER span whose context the job carries."""
    if registry is not None and task not in registry:
        raise UnknownTaskError(task, registry.names())
    check_data(task, data, max_bytes)
    if options.job_id is not None:
        check_job_id(options.job_id)
        existing = await client.get_job(options.job_id)
        if existing is not None:
            return Enqueued(existing.id, created=False, state=existing.state)
    if telemetry is None:
        return Enqueued(await client.add(task, data, options), created=True)
    with telemetry.add(client.name, task) as produced:
        job_id = await client.add(task, data, dataclasses.replace(
            options, telemetry_metadata=produced.metadata))
        produced.added(job_id)
    return Enqueued(job_id, created=True)


async def enqueue_bulk(client: QueueClient, jobs: list[tuple[str, Any, JobOptions]],
                       telemetry: Telemetry | None = None) -> list[str]:
    """Add checked (task, data, options) triples in one round trip; with `telemetry`, in one
    `addBulk` PRODUCER span whose context every job carries (as Node's addBulk)."""
    if telemetry is None:
        return await client.add_bulk(jobs)
    with telemetry.add_bulk(client.name, [task for task, _data, _options in jobs]) as produced:
        return await client.add_bulk([
            (task, data, dataclasses.replace(options, telemetry_metadata=produced.metadata))
            for task, data, options in jobs])


async def enqueue(client: QueueClient, registry: Registry | None, task: str, data: Any,
                  options: JobOptions, max_bytes: int,
                  telemetry: Telemetry | None = None) -> str:
    """`enqueue_job`, returning only the job's id."""
    return (await enqueue_job(client, registry, task, data, options, max_bytes, telemetry)).id
