"""The `bullpen` command: only the module of the command being run is imported.

A worker process never loads the web stack (Starlette, Jinja2, uvicorn, Prometheus): about
10 MB of memory per worker process. `bullpen --help` and unknown commands load them all.
"""

from __future__ import annotations

import importlib
import sys

import typer

# Command name → the module in bullpen.cli that registers it.
COMMAND_MODULES = {
    "worker": "worker", "enqueue": "jobs", "jobs": "jobs", "job": "jobs",
    "schedules": "schedules", "embedded": "embedded", "doctor": "doctor", "health": "doctor",
    "cleanup-exports": "exports", "web": "web",
}


def build(command: str | None) -> typer.Typer:
    """The Typer app with `command`'s group registered, or every group when it is unknown."""
    app = typer.Typer(
        name="bullpen",
        help="Background jobs, cron schedules and export files on a BullMQ queue.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def commands() -> None:
        """Background jobs, cron schedules and export files on a BullMQ queue."""

    wanted = COMMAND_MODULES.get(command or "")
    for name in [wanted] if wanted else list(dict.fromkeys(COMMAND_MODULES.values())):
        importlib.import_module(f"bullpen.cli.{name}").register(app)
    return app


def main() -> None:
    build(sys.argv[1] if len(sys.argv) > 1 else None)()
