"""`bullpen web`: the dashboard, JSON API, probes, metrics and export downloads (uvicorn)."""

from __future__ import annotations

import os

import typer
import uvicorn

from bullpen import logs
from bullpen.cli.common import definitions, fail, settings
from bullpen.errors import BullpenError
from bullpen.redis_url import refuse_untagged_cluster_keys
from bullpen.web import create_app
from bullpen.web.security import check_bind

log = logs.get("web")


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
        # The bound address is one of the host names answered by default (WEB_ALLOWED_HOSTS).
        loaded = loaded.model_copy(update={"web_host": host or loaded.web_host,
                                           "web_port": port or loaded.web_port})
        loaded_definitions = definitions(loaded)
        try:
            warnings = check_bind(loaded.web_host, loaded)
            refuse_untagged_cluster_keys(loaded, loaded_definitions.queues(loaded))
            asgi_app = create_app(loaded, definitions=loaded_definitions)
        except BullpenError as exc:
            fail(str(exc), 2)
        for warning in warnings:
            log.warning("%s", warning)
        log.info("Export directory: %s", loaded.export_path.absolute())
        queues = loaded_definitions.queues(loaded)
        typer.echo(f"[web] dashboard on http://{loaded.web_host}:{loaded.web_port}/ "
                   f"(queue{'s' if len(queues) > 1 else ''} {', '.join(queues)})", err=True)
        # X-Forwarded-For/-Proto are believed only from WEB_TRUSTED_PROXIES: they set the
        # client address (per-client throttling) and the scheme (Secure cookies).
        uvicorn.run(asgi_app, host=loaded.web_host, port=loaded.web_port, log_level="warning",
                    proxy_headers=True, forwarded_allow_ips=loaded.web_trusted_proxies,
                    server_header=False, lifespan="on")
