"""`bullpen enqueue`, `bullpen jobs`, `bullpen job ID`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import typer

from bullpen.adapter import JOB_STATES, QueueClient
from bullpen.cli.common import (
    chosen_queues,
    fail,
    print_json,
    settings,
    with_client,
    with_clients,
)
from bullpen.errors import BullpenError, JobNotFoundError
from bullpen.loader import load_registry
from bullpen.logs import printable
from bullpen.producer import Enqueued, enqueue_job, job_options, parse_json_data, route
from bullpen.settings import Settings
from bullpen.shown import as_text, fields_of
from bullpen.telemetry import telemetry_for


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


QUEUE_HELP = "The queue (any name, a Node app's too); default: "


def enqueue_command(
    task: str = typer.Argument(..., help="Registered task name, e.g. health.check"),
    data: str = typer.Option("{}", "--data", help="Job data as JSON."),
    delay_ms: int = typer.Option(0, "--delay", min=0, help="Delay in milliseconds."),
    job_id: str | None = typer.Option(None, "--job-id", help="Custom id (dedupes)."),
    attempts: int | None = typer.Option(None, "--attempts", min=1),
    queue: str | None = typer.Option(None, "--queue", help=QUEUE_HELP + "the task's own."),
) -> None:
    """Add a one-off job to its task's queue (or --queue) and print its id."""
    loaded = settings()
    try:
        registry = load_registry(loaded.bullpen_app)
        payload = parse_json_data(data)
        target = route(registry, task, loaded.worker_default_queue, queue)
    except BullpenError as exc:
        fail(str(exc), 2)
    options = dataclasses.replace(
        job_options(loaded), delay_ms=delay_ms, job_id=job_id,
        attempts=attempts or loaded.worker_default_attempts,
    )

    async def go(client: QueueClient) -> Enqueued:
        return await enqueue_job(client, registry, task, payload, options,
                                 loaded.job_max_data_bytes, telemetry_for(loaded))

    added = with_client(loaded, go, target)
    if not added.created:
        typer.echo(f"job {printable(repr(added.id))} already exists ({added.state}): nothing was "
                   f"added; `bullpen job {printable(added.id)}{_flag(loaded, target)}` shows it",
                   err=True)
    if target != loaded.worker_default_queue:
        typer.echo(f"on queue {target}", err=True)
    typer.echo(printable(added.id))


def _flag(loaded: Settings, queue: str) -> str:
    return "" if queue == loaded.worker_default_queue else f" --queue {queue}"


def jobs_command(
    state: str = typer.Option("waiting", "--state", help=f"One of: {', '.join(JOB_STATES)}"),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
    queue: str | None = typer.Option(None, "--queue", help=QUEUE_HELP + "every known queue."),
) -> None:
    """List jobs in one state, with counts for every state, per queue."""
    if state not in JOB_STATES:
        fail(f"--state {state!r} is not a job state (expected one of {', '.join(JOB_STATES)})",
             2)
    loaded = settings()
    queues = chosen_queues(loaded, queue)

    async def go(clients: list[QueueClient]) -> list[dict[str, Any]]:
        return [{"queue": client.name, "paused": await client.is_paused(),
                 "counts": await client.get_counts(),
                 "jobs": await client.get_jobs(state, 0, limit - 1)} for client in clients]

    shown = with_clients(loaded, queues, go)
    if as_json:
        listed = [view | {"jobs": [fields_of(r) for r in view["jobs"]]} for view in shown]
        print_json(listed[0] if len(listed) == 1 else {"queues": listed})
        return
    for view in shown:
        _print_queue(view, named=len(shown) > 1)


def _print_queue(view: dict[str, Any], named: bool) -> None:
    if view["paused"]:
        typer.echo(f"queue {view['queue']} is PAUSED: workers take no new jobs until it is "
                   "resumed (dashboard: Resume; API: POST /api/queue/resume)")
    counts = "  ".join(f"{name}={count}" for name, count in view["counts"].items())
    typer.echo(f"queue {view['queue']}: {counts}" if named else counts)
    for record in view["jobs"]:
        # Ids and task names come from whoever enqueued: escaped, they cannot forge lines.
        typer.echo(f"{printable(record.id):<40} {printable(record.name):<24} "
                   f"attempts={record.attempts_made}/{record.attempts_allowed} "
                   f"created={_when(record.timestamp_ms)}")


def job_command(job_id: str, as_json: bool = typer.Option(False, "--json"),
                queue: str | None = typer.Option(None, "--queue",
                                                 help=QUEUE_HELP + "every known queue.")
                ) -> None:
    """Show one job: state, data, result or failure, attempts, duration, logs."""
    loaded = settings()
    queues = chosen_queues(loaded, queue)

    async def go(clients: list[QueueClient]) -> tuple[Any, list[str], str]:
        found = [(client, record) for client in clients
                 if (record := await client.get_job(job_id)) is not None]
        if not found:
            where = (f"queue {clients[0].name!r}" if len(clients) == 1 else
                     f"queues {', '.join(client.name for client in clients)}")
            raise JobNotFoundError(f"no job {job_id!r} in {where}")
        if len(found) > 1:
            raise JobNotFoundError(
                f"job {job_id!r} exists in queues {', '.join(c.name for c, _ in found)} (each "
                "queue numbers its own jobs); pick one with --queue")
        client, record = found[0]
        return record, await client.get_logs(job_id), client.name

    record, lines, found_on = with_clients(loaded, queues, go)
    details = fields_of(record) | {"duration_ms": record.duration_ms, "logs": lines,
                                   "queue": found_on}
    if as_json:
        print_json(details)
        return
    keys = ("id", "name", "state", "attempts_made", "attempts_allowed", "duration_ms")
    for key in (*keys, "queue") if len(queues) > 1 else keys:
        typer.echo(f"{key:>16}: {printable(details[key])}")
    for key in ("timestamp_ms", "processed_on_ms", "finished_on_ms"):
        typer.echo(f"{key.removesuffix('_ms'):>16}: {_when(details[key])}")
    _value("data", record.data)
    if record.progress not in (None, 0):
        _value("progress", record.progress)
    if record.failed_reason:
        _block("failed_reason", record.failed_reason)
        for attempt, trace in enumerate(record.stacktrace, start=1):
            _block("stack trace" if len(record.stacktrace) == 1 else f"stack trace {attempt}",
                   trace.rstrip())
    else:
        _value("return_value", record.return_value)
    for line in lines:
        typer.echo(f"{'log':>16}: {printable(line)}")


def register(app: typer.Typer) -> None:
    app.command("enqueue")(enqueue_command)
    app.command("jobs")(jobs_command)
    app.command("job")(job_command)


def _value(label: str, value: Any) -> None:
    """A JSON value under its label."""
    _block(label, as_text(value))


def _block(label: str, text: str) -> None:
    """Text under its label, each line escaped; several lines start on the next one, indented."""
    lines = [printable(line) for line in text.split("\n")]
    if len(lines) > 1:
        typer.echo(f"{label:>16}:\n" + "\n".join(" " * 18 + line for line in lines))
    else:
        typer.echo(f"{label:>16}: {lines[0]}")
