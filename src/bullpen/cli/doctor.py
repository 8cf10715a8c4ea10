"""`bullpen doctor` (every check, with fixes) and `bullpen health` (a container health probe)."""

from __future__ import annotations

import socket

import typer
from redis.exceptions import RedisError

from bullpen import doctor, embedded
from bullpen.adapter import QueueClient, quick_client
from bullpen.cli.common import chosen_queues, print_json, run, settings
from bullpen.redis_url import redact
from bullpen.runtime.heartbeat import alive_workers


def _health(require_worker: bool) -> str | None:
    """None when healthy, else what is wrong; never starts the embedded server."""
    loaded = settings()
    url = loaded.worker_redis_url or embedded.status(loaded.bullpen_var_dir).url
    if url is None:
        return "WORKER_REDIS_URL is unset and the embedded server is not running"

    async def probe() -> str | None:
        connection = quick_client(url, timeout_s=5)
        try:
            await connection.ping()
        except (RedisError, OSError) as exc:
            return f"Redis at {redact(url)} is unreachable: {exc}"
        finally:
            await connection.aclose()
        if not require_worker:
            return None
        host = socket.gethostname()
        queues = chosen_queues(loaded, None)
        for queue in queues:
            client = QueueClient(url, queue, loaded.worker_prefix)
            try:
                if any(info.host == host for info in await alive_workers(client)):
                    return None
            finally:
                await client.close()
        return f"no live worker heartbeat from host {host} (queues: {', '.join(queues)})"

    return run(probe())


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_command(as_json: bool = typer.Option(False, "--json")) -> None:
        """Check settings, secrets, Redis, workers, schedules, failed jobs and the export dir."""
        checks = doctor.run_checks()
        if as_json:
            print_json({"ok": not doctor.failed(checks),
                        "checks": [check.as_dict() for check in checks]})
        else:
            typer.echo(doctor.render(checks))
        if doctor.failed(checks):
            raise typer.Exit(1)

    @app.command("health")
    def health_command(
        worker: bool = typer.Option(False, "--worker",
                                    help="Also require a live worker heartbeat from this host."),
    ) -> None:
        """Exit 0 if Redis answers (and, with --worker, this host's worker beats); for probes."""
        problem = _health(worker)
        if problem:
            typer.echo(f"unhealthy: {problem}", err=True)
            raise typer.Exit(1)
        typer.echo("healthy")
