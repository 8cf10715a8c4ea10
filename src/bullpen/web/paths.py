"""Paths under a mount point: the dashboard works at `/` and under any prefix of a host app.

A host app that mounts bullpen (`app.mount("/admin/jobs", create_app(...))`) passes the full
path with `root_path` set to the prefix; routing, checks and links use the path below it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope


def root_path(scope: Scope) -> str:
    """The mount prefix ('' when bullpen is the whole app), without a trailing slash."""
    return str(scope.get("root_path", "")).rstrip("/")


def route_path(scope: Scope) -> str:
    """The request path below the mount prefix, as bullpen's routes see it."""
    path, root = str(scope["path"]), root_path(scope)
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


def url(request: Request, path: str) -> str:
    """`path` (a bullpen route path, '/…') as the browser must ask for it."""
    return root_path(request.scope) + path
