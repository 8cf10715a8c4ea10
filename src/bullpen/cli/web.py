"""`bullpen web`: the dashboard, JSON API, probes, metrics and export downloads (uvicorn)."""

from __future__ import annotations

import os

import typer
import uvicorn

from bullpen.cli.common import definitions, fail, settings
from bullpen.errors import BullpenError
from bullpen.web import create_app
from bullpen.web.security import check_bind


def register(app: typer.Typer) -> None:
    @app.command("web")
    def web_command(
        host: str | None = typer.Option(None, "--host", help="Address to bind (WEB_HOST)."),
        port: int | None = typer.Option(None, "--port", help="Port to bind (WEB_PORT)."),
        app_module: str | None = typer.Option(
            None, "--app", help="Package with your tasks/schedules modules (BULLPEN_APP)."),
    ) -> None:
        """Serve the dashboard and export downloads until SIGTERM/SIGINT."""
        if app_module:
            os.environ["BULLPEN_APP"] = app_module
        loaded = settings()
        bind_host = host or loaded.web_host
        bind_port = port or loaded.web_port
        loaded_definitions = definitions(loaded)
        try:
            check_bind(bind_host, loaded)
            asgi_app = create_app(loaded, definitions=loaded_definitions)
        except BullpenError as exc:
            fail(str(exc), 2)
        typer.echo(f"[web] dashboard on http://{bind_host}:{bind_port}/ "
                   f"(queue {loaded.worker_default_queue})", err=True)
        uvicorn.run(asgi_app, host=bind_host, port=bind_port, log_level="warning",
                    proxy_headers=True, server_header=False, lifespan="on")
