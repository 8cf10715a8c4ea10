"""The Jinja2 environment: autoescaped templates and filters for times, sizes and JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from bullpen.errors import ActionError
from bullpen.shown import as_text
from bullpen.version import __version__
from bullpen.web import charts, job_view, sparklines
from bullpen.web.job_links import job_ref
from bullpen.web.json_tree import json_tree
from bullpen.web.paths import root_path, route_path
from bullpen.web.queue_scope import path_safe, queue_root
from bullpen.web.security import SESSION_COOKIE
from bullpen.web.state import WebState, web_state
from bullpen.web.tracebacks import fold

TEMPLATE_DIR = Path(__file__).parent / "templates"
FLASH_COOKIE = "bullpen_flash"


def ms_time(value: int | float | None) -> str:
    if not value:
        return "—"
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(delta_s: float) -> str:
    """A time difference as '3 min ago' (past, positive) or 'in 2.5 h' (future)."""
    size = abs(delta_s)
    if size < 5:
        return "just now"
    unit, seconds = next((unit, seconds) for unit, seconds in (
        ("d", 86400), ("h", 3600), ("min", 60), ("s", 1)) if size >= seconds)
    amount = size / seconds
    text = f"{amount:.0f}" if amount >= 10 or unit in ("min", "s") else \
        f"{amount:.1f}".removesuffix(".0")
    return f"{text} {unit} ago" if delta_s >= 0 else f"in {text} {unit}"


def when(value: int | float | None) -> Markup:
    """A time in ms as '3 min ago', with the exact UTC time on hover (live.js keeps it fresh)."""
    if not value:
        return Markup("—")
    exact = datetime.fromtimestamp(value / 1000, tz=UTC)
    shown = relative(datetime.now(tz=UTC).timestamp() - value / 1000)
    return Markup(f'<time datetime="{exact.isoformat(timespec="milliseconds")}" '
                  f'title="{exact:%Y-%m-%d %H:%M:%S} UTC">{escape(shown)}</time>')


def s_time(value: int | float | None) -> str:
    return ms_time(value * 1000) if value else "—"


def duration_ms(value: int | float | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    seconds = value / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def age_s(value: float | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} s"


def file_size(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def pretty_json(value: Any) -> str:
    # Escaping happens in the template (autoescape); this only lays the value out.
    return as_text(value)


def compact_json(value: Any) -> str:
    return as_text(value, indent=None)


def build_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(ms_time=ms_time, s_time=s_time, duration_ms=duration_ms, age_s=age_s,
                       file_size=file_size, pretty_json=pretty_json,
                       compact_json=compact_json, job_ref=job_ref, when=when,
                       json_tree=json_tree, fold_trace=fold)
    env.globals.update(line_chart=charts.line_chart, legend=charts.legend,
                       numbers_table=charts.numbers_table,
                       jobs_strip=sparklines.jobs_per_minute, jobs_summary=sparklines.jobs_summary,
                       lateness_strip=sparklines.lateness_strip,
                       lateness_summary=sparklines.lateness_summary,
                       attempt_of=job_view.attempt_of, version=__version__)
    return Jinja2Templates(env=env)


def set_flash(response: Response, message: str, ok: bool = True) -> None:
    """A one-shot message for the next page (the page a POST redirects to)."""
    value = quote(f"{'ok' if ok else 'error'}:{message[:1000]}")
    response.set_cookie(FLASH_COOKIE, value, max_age=60, httponly=True, samesite="lax")


def queue_picker(request: Request, state: WebState) -> list[dict[str, Any]]:
    """A link per known queue (and the one shown) to the same page about that queue; a job's
    page leads to the other queue's overview (each queue numbers its own jobs)."""
    path = route_path(request.scope)
    same_page = "/" if path.startswith("/job/") else path
    default = state.settings.worker_default_queue
    names = state.queues if state.queue in state.queues else [*state.queues, state.queue]
    links = []
    for queue in names:
        if queue == default:
            href = queue_root(request.scope, None) + same_page
        elif path_safe(queue):
            href = queue_root(request.scope, queue) + same_page
        else:
            href = f"{queue_root(request.scope, None)}{same_page}?{urlencode({'queue': queue})}"
        links.append({"name": queue, "href": href, "current": queue == state.queue})
    return links


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """Render `name` with the CSRF token, the flash message and the shared page data."""
    templates: Jinja2Templates = request.app.state.templates
    kind, _, flash = unquote(request.cookies.get(FLASH_COOKIE, "")).partition(":")
    context.setdefault("refresh_s", None)
    try:
        state = web_state(request)
    except ActionError:  # a bad ?queue=: the error page about it shows the default queue
        state = request.app.state.web
    response = templates.TemplateResponse(request, name, {
        "csrf_token": request.scope.get("state", {}).get("csrf_token", ""),
        "csp_nonce": request.scope.get("state", {}).get("csp_nonce", ""),
        "flash": flash,
        "flash_kind": kind,
        "redis_url": request.app.state.web.redis_url_shown,
        "queue": state.queue,
        "queues": queue_picker(request, state),
        "exports_enabled": request.app.state.web.exports is not None,
        "path": route_path(request.scope),
        "root": root_path(request.scope),
        "signed_in": SESSION_COOKIE in request.cookies,
        **context,
    }, status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE)
    return response
