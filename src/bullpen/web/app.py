"""The ASGI app factory behind `bullpen web`: routes, security middleware and the queue client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

from pydantic import SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from bullpen import logs
from bullpen.adapter import QueueClient
from bullpen.errors import ActionError, SecretError
from bullpen.exports.service import ExportService
from bullpen.loader import Definitions, load_definitions
from bullpen.redis_url import redact, resolve_url
from bullpen.settings import Settings, load_settings, split_list
from bullpen.web import api, assets, downloads, forms, metrics, pages, probes
from bullpen.web.host_auth import AuthHook, HostAuthMiddleware
from bullpen.web.hosts import HostPolicy
from bullpen.web.middleware import DeadlineMiddleware, SecurityMiddleware, is_public
from bullpen.web.paths import route_path
from bullpen.web.queue_scope import QueueScopeMiddleware
from bullpen.web.security import Guard
from bullpen.web.sessions import SessionStore
from bullpen.web.state import WebState
from bullpen.web.templating import build_templates, render
from bullpen.web.throttle import FailureThrottle

log = logs.get("web")

# Form posts carry at most a job's data (JOB_MAX_DATA_BYTES) plus a little form overhead;
# JSON-escaping in a form can triple it.
BODY_OVERHEAD_BYTES = 64 * 1024
REQUEST_DEADLINE_S = 10.0


def _export_service(settings: Settings) -> ExportService | None:
    """The exports service when a signing secret is configured, else None."""
    try:
        return ExportService(settings)
    except SecretError as exc:
        log.warning("Export downloads and the exports page are off: %s", exc)
        return None


def _routes(exports: ExportService | None) -> list[BaseRoute]:
    with_exports = exports is not None
    routes = [*probes.routes(), *metrics.routes(), *api.routes(with_exports),
              *pages.routes(with_exports), *forms.routes(with_exports), *assets.routes()]
    if with_exports:
        routes += downloads.routes()
    return routes


def _without_own_auth(settings: Settings) -> Settings:
    """The host's hook decides who gets in; bullpen's token and basic auth are not asked for."""
    return settings.model_copy(update={"web_auth_token": SecretStr(""),
                                       "web_basic_auth": SecretStr("")})


async def _not_found(request: Request, exc: Exception) -> Response:
    if route_path(request.scope).startswith("/api"):
        return Response('{"error": "not found"}', 404, media_type="application/json")
    if is_public(route_path(request.scope), request.method):
        # Anyone may ask for /exports/anything: the answer names nothing about this server.
        return downloads.public_page(404, "Not found", "There is nothing at this address.")
    return render(request, "error.html", status=404, message="No such page.", title="Not found")


async def _refused(request: Request, exc: Exception) -> Response:
    """An ActionError outside the API's own handling (a page's bad `?queue=`)."""
    status = exc.status if isinstance(exc, ActionError) else 400
    if route_path(request.scope).startswith("/api"):
        return Response(json.dumps({"error": str(exc)}), status, media_type="application/json")
    return render(request, "error.html", status=status, message=str(exc), title="Refused")


async def _redis_down(request: Request, exc: Exception) -> Response:
    public = is_public(route_path(request.scope), request.method)
    where = "" if public else f" at {request.app.state.web.redis_url_shown}"
    message = (f"Redis{where} is unreachable ({type(exc).__name__}); check WORKER_REDIS_URL "
               "and that the server is running, then reload")
    log.warning("%s %s: %s", request.method, request.url.path, message)
    path = route_path(request.scope)
    if path.startswith("/api") or path == "/metrics":
        return Response(json.dumps({"error": message}), 503, media_type="application/json")
    if public:
        return downloads.public_page(503, "Unavailable", "Try again in a moment.")
    return render(request, "error.html", status=503, message=message, title="Redis unreachable")


def create_app(settings: Settings | None = None, *, definitions: Definitions | None = None,
               client: QueueClient | None = None, exports: ExportService | None = None,
               request_deadline_s: float = REQUEST_DEADLINE_S,
               authenticate: AuthHook | None = None) -> Starlette:
    """Build the dashboard app: `bullpen web` serves it, a host ASGI app mounts it.

    Settings are read as the worker reads them unless given; tasks and schedules are loaded
    from BULLPEN_APP unless `definitions` is given; tests pass their own `client`. Mounted
    (`host.mount("/admin/jobs", create_app())`), every link, redirect and form stays under the
    prefix. `authenticate` puts the dashboard behind the host's own sign-in instead of
    WEB_AUTH_TOKEN / WEB_BASIC_AUTH (see `web/host_auth.py`).
    """
    settings = settings if settings is not None else load_settings()
    if definitions is None:
        definitions = load_definitions(settings.bullpen_app)
    url = resolve_url(settings) if client is None else ""
    state = WebState(settings, definitions, redact(url) if url else "(test client)",
                     url or settings.worker_redis_url or "",
                     exports if exports is not None else _export_service(settings))
    if client is not None:
        state.use_client(client)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await state.close(keep=client)

    guard = Guard(settings if authenticate is None else _without_own_auth(settings))
    sessions = SessionStore(guard.key, settings.keyspace, lambda: state.client.redis,
                            settings.web_session_max_age_s)
    throttle = FailureThrottle()
    hosts = HostPolicy(split_list(settings.web_allowed_hosts), settings.web_host)
    max_body = 3 * settings.job_max_data_bytes + BODY_OVERHEAD_BYTES
    host_auth = [] if authenticate is None else [
        Middleware(HostAuthMiddleware, authenticate=authenticate)]
    app = Starlette(
        routes=_routes(state.exports),
        middleware=[
            Middleware(QueueScopeMiddleware),
            Middleware(DeadlineMiddleware, deadline_s=request_deadline_s,
                       redis_shown=state.redis_url_shown),
            *host_auth,
            Middleware(SecurityMiddleware, guard=guard, sessions=sessions, hosts=hosts,
                       throttle=throttle, max_body_bytes=max_body,
                       cookie_secure=settings.web_cookie_secure,
                       host_app_auth=authenticate is not None),
        ],
        exception_handlers={404: _not_found, RedisConnectionError: _redis_down,
                            ActionError: _refused},
        lifespan=lifespan,
    )
    app.state.web = state
    app.state.guard = guard
    app.state.sessions = sessions
    app.state.throttle = throttle
    app.state.templates = build_templates()
    return app
