"""`bullpen schedules`: declared versus registered, next fire times, what each pattern means."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from bullpen import cron
from bullpen.adapter import QueueClient, SchedulerRecord, now_ms
from bullpen.cli.common import fail, print_json, settings, with_client
from bullpen.errors import BullpenError
from bullpen.reconcile import OWNED_KEY
from bullpen.schedule import ScheduledJob


def schedule_rows(declared: list[ScheduledJob], registered: list[SchedulerRecord],
                  owned: set[str]) -> list[dict[str, Any]]:
    """One row per schedule name known on either side, with its status."""
    by_id = {record.id: record for record in registered}
    rows: list[dict[str, Any]] = []
    for item in declared:
        record = by_id.pop(item.name, None)
        rows.append(_row(item.name, item.task_name, item.pattern, item.every_ms, item.tz,
                         "registered" if record else "missing", record))
    for record in by_id.values():
        status = "orphaned" if record.id in owned else "foreign"
        rows.append(_row(record.id, record.task_name, record.pattern, record.every_ms, record.tz,
                         status, record))
    return rows


def _row(name: str, task: str, pattern: str | None, every_ms: int | None, tz: str | None,
         status: str, record: SchedulerRecord | None) -> dict[str, Any]:
    upcoming = cron.next_fire_times(pattern, now_ms(), tz) if pattern else []
    return {
        "name": name, "task": task, "pattern": pattern, "every_ms": every_ms, "tz": tz or "UTC",
        "status": status,
        "description": cron.describe(pattern) if pattern else f"Every {every_ms} ms",
        "next": [moment.isoformat() for moment in upcoming],
        "registered_next_ms": record.next_ms if record else None,
    }


def register(app: typer.Typer) -> None:
    @app.command("schedules")
    def schedules_command(as_json: bool = typer.Option(False, "--json")) -> None:
        """Declared schedules versus BullMQ's registered job schedulers."""
        from bullpen.registry import load_registry
        from bullpen.schedule import load_schedules

        loaded = settings()
        sys.path.insert(0, os.getcwd())
        try:
            declared = load_schedules(loaded.bullpen_app, load_registry(loaded.bullpen_app))
        except BullpenError as exc:
            fail(str(exc), 2)

        async def go(client: QueueClient) -> tuple[list[SchedulerRecord], set[str]]:
            owned = await client.redis.hkeys(client.key(OWNED_KEY))
            return await client.get_schedulers(), set(owned)

        registered, owned = with_client(loaded, go)
        rows = schedule_rows(declared, registered, owned)
        if as_json:
            print_json(rows)
            return
        for row in rows:
            repeat = row["pattern"] or f"every {row['every_ms']} ms"
            typer.echo(f"{row['name']} -> {row['task']}  [{row['status']}]")
            typer.echo(f"    {repeat} ({row['tz']}): {row['description']}")
            if row["next"]:
                typer.echo(f"    next: {', '.join(row['next'])}")
