"""`bullpen worker [--dev]`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from bullpen.cli.common import fail, settings
from bullpen.connection import resolve_url
from bullpen.errors import BullpenError


def _watch_paths(app: str | None) -> list[Path]:
    import bullpen

    paths = [Path(bullpen.__file__).parent, Path.cwd()]
    if app:
        import importlib.util

        spec = importlib.util.find_spec(app.split(".")[0])
        if spec and spec.origin:
            paths.append(Path(spec.origin).parent)
    return list(dict.fromkeys(path.resolve() for path in paths))


def _dev(app: str | None) -> None:
    from watchfiles import PythonFilter, run_process

    os.environ.setdefault("BULLPEN_ENV", "development")
    command = [sys.executable, "-m", "bullpen", "worker"]
    if app:
        command += ["--app", app]
    typer.echo(f"[dev] watching {', '.join(map(str, _watch_paths(app)))} for .py changes",
               err=True)
    run_process(*_watch_paths(app), target=" ".join(command), target_type="command",
                watch_filter=PythonFilter(), sigint_timeout=10)


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker_command(
        dev: bool = typer.Option(False, "--dev", help="Restart on .py changes (development)."),
        app_module: str | None = typer.Option(
            None, "--app", help="Package with your tasks/schedules modules (BULLPEN_APP)."),
        processes: int | None = typer.Option(
            None, "--processes", min=1, max=64,
            help="Worker processes under this command (WORKER_PROCESSES, default 1)."),
    ) -> None:
        """Process jobs and run the declared schedules until SIGTERM/SIGINT."""
        if app_module:
            os.environ["BULLPEN_APP"] = app_module
        if dev:
            _dev(app_module or os.environ.get("BULLPEN_APP"))
            return
        loaded = settings()
        count = processes or loaded.worker_processes
        if count > 1:
            from bullpen.supervisor import run_processes

            raise typer.Exit(run_processes(count, loaded.bullpen_app))
        from bullpen.exports.tokens import load_secrets
        from bullpen.registry import load_registry
        from bullpen.schedule import load_schedules
        from bullpen.worker import run_worker

        sys.path.insert(0, os.getcwd())
        try:
            load_secrets(loaded)  # refuse to start with a missing, placeholder or weak secret
            loaded.export_path.mkdir(mode=0o700, parents=True, exist_ok=True)
            registry = load_registry(loaded.bullpen_app)
            declared = load_schedules(loaded.bullpen_app, registry)
            url = resolve_url(loaded)
        except BullpenError as exc:
            fail(str(exc), 2)
        raise typer.Exit(run_worker(loaded, registry, declared, url,
                                    embedded=not loaded.worker_redis_url))
