"""`bullpen schedules`: declared versus registered, next fire times, what each pattern means."""

from __future__ import annotations

from typing import Any

import typer

from bullpen.adapter import QueueClient
from bullpen.cli.common import (
    definitions,
    fail,
    print_json,
    settings,
    with_clients,
)
from bullpen.errors import BullpenError
from bullpen.queue_names import check_queue_name
from bullpen.reconcile import schedule_status


def register(app: typer.Typer) -> None:
    @app.command("schedules")
    def schedules_command(
        as_json: bool = typer.Option(False, "--json"),
        queue: str | None = typer.Option(
            None, "--queue", help="One queue (any name, a Node app's too); default: every "
                                  "known queue."),
    ) -> None:
        """Declared schedules versus BullMQ's registered job schedulers, per queue."""
        loaded = settings()
        loaded_definitions = definitions(loaded)
        try:
            queues = ([check_queue_name(queue, "--queue")] if queue is not None
                      else loaded_definitions.queues(loaded))
        except BullpenError as exc:
            fail(str(exc), 2)
        default = loaded.worker_default_queue

        async def go(clients: list[QueueClient]) -> list[dict[str, Any]]:
            rows = []
            for client in clients:
                declared = loaded_definitions.schedules_on(client.name, default)
                rows += [status.as_dict() | {"queue": client.name}
                         for status in await schedule_status(client, declared)]
            return rows

        rows = with_clients(loaded, queues, go)
        if as_json:
            print_json(rows)
            return
        for row in rows:
            repeat = row["pattern"] or f"every {row['every_ms']} ms"
            where = f"  on queue {row['queue']}" if len(queues) > 1 else ""
            typer.echo(f"{row['name']} -> {row['task']}  [{row['status']}]{where}")
            typer.echo(f"    {repeat} ({row['tz']}): {row['description']}")
            if row["next"]:
                typer.echo(f"    next: {', '.join(row['next'])}")
