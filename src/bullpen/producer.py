"""Enqueueing jobs from an app or the CLI, with the task name and data checked first."""

from __future__ import annotations

import json
from typing import Any

from bullpen.adapter import JobOptions, QueueClient
from bullpen.definitions.task import Registry
from bullpen.errors import JobDataError, UnknownTaskError
from bullpen.settings import Settings


def job_options(settings: Settings) -> JobOptions:
    """Defaults for every job bullpen enqueues or schedules."""
    return JobOptions(
        attempts=settings.worker_default_attempts,
        backoff_type=settings.worker_backoff_type,
        backoff_delay_ms=settings.worker_backoff_delay_ms,
        keep_completed=settings.worker_keep_completed,
        keep_failed=settings.worker_keep_failed,
    )


def check_data(task: str, data: Any, max_bytes: int) -> None:
    """Raise JobDataError unless `data` is JSON-serialisable and within `max_bytes`."""
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


async def enqueue(client: QueueClient, registry: Registry | None, task: str, data: Any,
                  options: JobOptions, max_bytes: int) -> str:
    """Add a job for `task`; nothing is written unless the task is known and the data valid."""
    if registry is not None and task not in registry:
        raise UnknownTaskError(task, registry.names())
    check_data(task, data, max_bytes)
    return await client.add(task, data, options)
