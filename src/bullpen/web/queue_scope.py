"""The dashboard's /q/<queue>/ prefix: every page, form, API route and link of one queue.

A request to `/q/exports/jobs/failed` is routed as `/jobs/failed` about queue `exports`: the
prefix joins the mount point (`root_path`), so every link and form a page builds from it stays
on that queue, and a form can never act on another queue than the page it came from. Without
the prefix a request is about the default queue (or the API's `?queue=`).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from bullpen.errors import QueueNameError
from bullpen.queue_names import check_queue_name
from bullpen.web.paths import root_path, route_path
from bullpen.web.state import QUEUE_SCOPE_KEY

PREFIX = "/q/"
# Names that read the same in a path unquoted; others are reached with `?queue=`.
_PATH_SAFE = re.compile(r"(?!\.+$)[A-Za-z0-9._~-]+")


def path_safe(queue: str) -> bool:
    return bool(_PATH_SAFE.fullmatch(queue))


def queue_root(scope: Scope, queue: str | None) -> str:
    """The root (mount point plus prefix) of `queue`'s pages; None: the default queue's."""
    base = str(scope.get("bullpen.mount_root", root_path(scope)))
    return base if queue is None else f"{base}{PREFIX}{queue}"


class QueueScopeMiddleware:
    """Moves a valid /q/<queue> prefix from the route path into `root_path` and the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["bullpen.mount_root"] = root_path(scope)
            path = route_path(scope)
            if path.startswith(PREFIX):
                name = path[len(PREFIX):].partition("/")[0]
                if _rest_follows(path, name) and path_safe(name) and _valid(name):
                    scope["root_path"] = queue_root(scope, name)
                    scope[QUEUE_SCOPE_KEY] = name
        await self.app(scope, receive, send)


def _rest_follows(path: str, name: str) -> bool:
    """`/q/<name>/…`: a bare `/q/<name>` is no page (links end the prefix with a slash)."""
    return path.startswith(f"{PREFIX}{name}/")


def _valid(name: str) -> bool:
    try:
        check_queue_name(name, "path")
    except QueueNameError:
        return False
    return True
