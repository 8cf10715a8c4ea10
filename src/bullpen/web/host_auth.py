"""The hook a host app uses to put the dashboard behind its own sign-in instead of bullpen's.

`create_app(authenticate=hook)`: `hook(request)` (plain or async) returns True to let the
request in, False to refuse it (403), or a Response to send instead, such as a redirect to
the host's login page. The request shares the host's scope, so `request.session`,
`request.user` and cookies set by the host's middleware are all there. Probes and download
links stay public as always: a download token is its own credential.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bullpen.web.middleware import is_public
from bullpen.web.paths import route_path

AuthHook = Callable[[Request], bool | Response | Awaitable[bool | Response]]


class HostAuthMiddleware:
    """Asks the host's hook about every non-public request before bullpen handles it."""

    def __init__(self, app: ASGIApp, authenticate: AuthHook) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(route_path(scope), scope["method"]):
            await self.app(scope, receive, send)
            return
        verdict = self.authenticate(Request(scope))
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict is True:
            await self.app(scope, receive, send)
            return
        if isinstance(verdict, Response):
            await verdict(scope, receive, send)
            return
        await _refusal(scope)(scope, receive, send)


def _refusal(scope: Scope) -> Response:
    if route_path(scope).startswith("/api"):
        return JSONResponse({"error": "forbidden: the app's sign-in does not allow this"}, 403)
    return PlainTextResponse("Forbidden: sign in to the app with an account allowed to see "
                             "the jobs dashboard.", 403)
