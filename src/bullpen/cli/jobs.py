"""`bullpen enqueue`, `bullpen jobs`, `bullpen job ID`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import typer

from bullpen.adapter import JOB_STATES, QueueClient
from bullpen.cli.common import fail, print_json, settings, with_client
from bullpen.errors import BullpenError, JobNotFoundError
from bullpen.loader import load_registry
from bullpen.logs import printable
from bullpen.producer import Enqueued, enqueue_job, job_options, parse_json_data
from bullpen.shown import as_text, fields_of
from bullpen.telemetry import telemetry_for


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def enqueue_command(
    task: str = typer.Argument(..., help="Registered task name, e.g. health.check"),
    data: str = typer.Option("{}", "--data", help="Job data as JSON."),
    delay_ms: int = typer.Option(0, "--delay", min=0, help="Delay in milliseconds."),
    job_id: str | None = typer.Option(None, "--job-id", help="Custom id (dedupes)."),
    attempts: int | None = typer.Option(None, "--attempts", min=1),
) -> None:
    """Add a one-off job to the queue and print its id."""
    loaded = settings()
    try:
        registry = load_registry(loaded.bullpen_app)
        payload = parse_json_data(data)
    except BullpenError as exc:
        fail(str(exc), 2)
    options = dataclasses.replace(
        job_options(loaded), delay_ms=delay_ms, job_id=job_id,
        attempts=attempts or loaded.worker_default_attempts,
    )

    async def go(client: QueueClient) -> Enqueued:
        return await enqueue_job(client, registry, task, payload, options,
                                 loaded.job_max_data_bytes, telemetry_for(loaded))

    added = with_client(loaded, go)
    if not added.created:
        typer.echo(f"job {printable(repr(added.id))} already exists ({added.state}): nothing was "
                   f"added; `bullpen job {printable(added.id)}` shows it", err=True)
    typer.echo(printable(added.id))


def jobs_command(
    state: str = typer.Option("waiting", "--state", help=f"One of: {', '.join(JOB_STATES)}"),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List jobs in one state, with counts for every state."""
    if state not in JOB_STATES:
        fail(f"--state {state!r} is not a job state (expected one of {', '.join(JOB_STATES)})",
             2)
    loaded = settings()

    async def go(client: QueueClient) -> tuple[bool, dict[str, int], list[Any]]:
        return (await client.is_paused(), await client.get_counts(),
                await client.get_jobs(state, 0, limit - 1))

    paused, counts, records = with_client(loaded, go)
    queue = loaded.worker_default_queue
    if as_json:
        print_json({"queue": queue, "paused": paused, "counts": counts,
                    "jobs": [fields_of(r) for r in records]})
        return
    if paused:
        typer.echo(f"queue {queue} is PAUSED: workers take no new jobs until it is resumed "
                   "(dashboard: Resume; API: POST /api/queue/resume)")
    typer.echo("  ".join(f"{name}={count}" for name, count in counts.items()))
    for record in records:
        # Ids and task names come from whoever enqueued: escaped, they cannot forge lines.
        typer.echo(f"{printable(record.id):<40} {printable(record.name):<24} "
                   f"attempts={record.attempts_made}/{record.attempts_allowed} "
                   f"created={_when(record.timestamp_ms)}")


def job_command(job_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one job: state, data, result or failure, attempts, duration, logs."""
    loaded = settings()

    async def go(client: QueueClient) -> tuple[Any, list[str]]:
        record = await client.get_job(job_id)
        if record is None:
            raise JobNotFoundError(f"no job {job_id!r} in queue {client.name!r}")
        return record, await client.get_logs(job_id)

    record, lines = with_client(loaded, go)
    details = fields_of(record) | {"duration_ms": record.duration_ms, "logs": lines}
    if as_json:
        print_json(details)
        return
    for key in ("id", "name", "state", "attempts_made", "attempts_allowed", "duration_ms"):
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
