"""The `bullpen` command line (Typer): one module per group of commands."""

from __future__ import annotations

import typer

from bullpen.cli import doctor as doctor_cli
from bullpen.cli import embedded as embedded_cli
from bullpen.cli import exports as exports_cli
from bullpen.cli import jobs, schedules, worker
from bullpen.cli import web as web_cli

app = typer.Typer(
    name="bullpen",
    help="Background jobs, cron schedules and export files on a BullMQ queue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
worker.register(app)
jobs.register(app)
schedules.register(app)
embedded_cli.register(app)
doctor_cli.register(app)
exports_cli.register(app)
web_cli.register(app)


def main() -> None:
    app()
