"""`bullpen schedules`: declared versus registered, next fire times, what each pattern means."""

from __future__ import annotations

import typer

from bullpen.adapter import QueueClient
from bullpen.cli.common import definitions, print_json, settings, with_client
from bullpen.reconcile import ScheduleStatus, schedule_status


def register(app: typer.Typer) -> None:
    @app.command("schedules")
    def schedules_command(as_json: bool = typer.Option(False, "--json")) -> None:
        """Declared schedules versus BullMQ's registered job schedulers."""
        loaded = settings()
        declared = definitions(loaded).schedules

        async def go(client: QueueClient) -> list[ScheduleStatus]:
            return await schedule_status(client, declared)

        rows = [status.as_dict() for status in with_client(loaded, go)]
        if as_json:
            print_json(rows)
            return
        for row in rows:
            repeat = row["pattern"] or f"every {row['every_ms']} ms"
            typer.echo(f"{row['name']} -> {row['task']}  [{row['status']}]")
            typer.echo(f"    {repeat} ({row['tz']}): {row['description']}")
            if row["next"]:
                typer.echo(f"    next: {', '.join(row['next'])}")
