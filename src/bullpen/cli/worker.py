"""`bullpen worker [--dev] [--processes N] [--queue NAME[=CONCURRENCY]]…`."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated

import typer

from bullpen.cli.common import definitions, fail, settings
from bullpen.errors import BullpenError
from bullpen.exports.tokens import load_secrets
from bullpen.queue_names import parse_queue_specs
from bullpen.redis_url import refuse_untagged_cluster_keys, resolve_url
from bullpen.runtime.process import run_worker
from bullpen.runtime.stop import follow_parent
from bullpen.runtime.supervisor import run_processes
from bullpen.settings import forget_development, record_development

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _watch_paths(app: str | None) -> list[Path]:
    paths = [PACKAGE_DIR, Path.cwd()]
    if app:
        spec = importlib.util.find_spec(app.split(".")[0])
        if spec and spec.origin:
            paths.append(Path(spec.origin).parent)
    return list(dict.fromkeys(path.resolve() for path in paths))


def _dev(app: str | None, processes: int | None, queues: list[str]) -> int:
    os.environ.setdefault("BULLPEN_ENV", "development")
    loaded = settings()  # bad settings stop the command here, not in a child awaiting a reload
    if loaded.is_development:
        marker = record_development(loaded.bullpen_var_dir)
        typer.echo(f"[dev] development mode, recorded in {marker.absolute()}: bullpen web, "
                   "doctor and enqueue run with this var dir use it too", err=True)
    return run_processes(processes or 1, app, watch=_watch_paths(app), queues=queues)


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker_command(
        dev: bool = typer.Option(False, "--dev", help="Restart on .py changes (development)."),
        app_module: str | None = typer.Option(
            None, "--app", help="Package with your tasks/schedules modules (BULLPEN_APP)."),
        processes: int | None = typer.Option(
            None, "--processes", min=1, max=64,
            help="Worker processes under this command (WORKER_PROCESSES, default 1)."),
        queue: Annotated[list[str] | None, typer.Option(
            "--queue", metavar="NAME[=CONCURRENCY]",
            help="A queue to consume, with its own concurrency if given; repeat for several "
                 "(WORKER_QUEUES, default the default queue).")] = None,
    ) -> None:
        """Process jobs and run the declared schedules until SIGTERM/SIGINT."""
        if app_module:
            os.environ["BULLPEN_APP"] = app_module
        try:
            specs = parse_queue_specs(queue or [], "--queue")
        except BullpenError as exc:
            fail(str(exc), 2)
        if dev:
            raise typer.Exit(_dev(app_module or os.environ.get("BULLPEN_APP"), processes,
                                  [str(spec) for spec in specs]))
        follow_parent()
        loaded = settings()
        try:
            refuse_untagged_cluster_keys(
                loaded, [spec.name for spec in specs or loaded.queue_specs])
        except BullpenError as exc:
            fail(str(exc), 2)
        if "bullpen_env" in loaded.model_fields_set and not loaded.is_development:
            forget_development(loaded.bullpen_var_dir)  # a production worker ends development
        count = processes or loaded.worker_processes
        if count > 1:
            raise typer.Exit(run_processes(count, loaded.bullpen_app,
                                           queues=[str(spec) for spec in specs]))
        loaded_definitions = definitions(loaded)
        try:
            load_secrets(loaded)  # refuse to start with a missing, placeholder or weak secret
            loaded.export_path.mkdir(mode=0o700, parents=True, exist_ok=True)
            url = resolve_url(loaded)
        except BullpenError as exc:
            fail(str(exc), 2)
        raise typer.Exit(run_worker(loaded, loaded_definitions, url,
                                    embedded=not loaded.worker_redis_url, queues=specs or None))
