"""`bullpen embedded start | status | stop`: the server used when WORKER_REDIS_URL is unset."""

from __future__ import annotations

import dataclasses

import typer

from bullpen import embedded
from bullpen.cli.common import fail, print_json, settings
from bullpen.errors import EmbeddedError

# Like `systemctl status`: 3 means "not running", so scripts can tell it from an error.
EXIT_NOT_RUNNING = 3

group = typer.Typer(
    help="The embedded Redis-compatible server (used when WORKER_REDIS_URL is unset).",
    no_args_is_help=True,
)


def _note_external(url_set: bool) -> None:
    if url_set:
        typer.echo("note: WORKER_REDIS_URL is set, so bullpen does not use the embedded server.",
                   err=True)


@group.command("start")
def start_command() -> None:
    """Start the server (or find it already up) and print its URL."""
    loaded = settings()
    _note_external(bool(loaded.worker_redis_url))
    try:
        typer.echo(embedded.ensure_server(loaded.bullpen_var_dir))
    except EmbeddedError as exc:
        fail(str(exc))


@group.command("status")
def status_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """Whether the server runs, where, and its persistence and eviction settings."""
    loaded = settings()
    _note_external(bool(loaded.worker_redis_url))
    state = embedded.status(loaded.bullpen_var_dir)
    if as_json:
        print_json(dataclasses.asdict(state))
    elif state.running:
        typer.echo(f"running: {state.url} (pid {state.pid}, version {state.version})")
        typer.echo(f"  data: {state.directory}")
        typer.echo(f"  appendonly: {'yes' if state.aof_enabled else 'no'}, "
                   f"maxmemory-policy: {state.maxmemory_policy}, memory: {state.used_memory}, "
                   f"uptime: {state.uptime_s} s")
    else:
        typer.echo(f"not running (directory {state.directory}); a worker starts it, "
                   "or run `bullpen embedded start`")
    if not state.running:
        raise typer.Exit(EXIT_NOT_RUNNING)


@group.command("stop")
def stop_command() -> None:
    """Shut the server down cleanly (its AOF is flushed); jobs stay on disk for the next start."""
    loaded = settings()
    _note_external(bool(loaded.worker_redis_url))
    try:
        stopped = embedded.stop(loaded.bullpen_var_dir)
    except EmbeddedError as exc:
        fail(str(exc))
    typer.echo("stopped" if stopped else "not running")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="embedded")
