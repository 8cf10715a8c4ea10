"""ASGI middleware: authentication for everything but probes and downloads, CSRF for every POST."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bullpen.web.paths import root_path, route_path
from bullpen.web.security import CSRF_COOKIE, Guard

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/login"})


def is_public(path: str, method: str) -> bool:
    # A download link is its own credential: whoever holds an unexpired token may fetch the file.
    return path in PUBLIC_PATHS or (path.startswith("/exports/") and method in SAFE_METHODS)


class DeadlineMiddleware:
    """Bounds each request's time: the queue client retries a down Redis without end, and a
    page should rather say so. Downloads stream from disk and are not bounded."""

    def __init__(self, app: ASGIApp, deadline_s: float, redis_shown: str) -> None:
        self.app = app
        self.deadline_s = deadline_s
        self.redis_shown = redis_shown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope).startswith("/exports/"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.deadline_s):
                await self.app(scope, receive, tracking)
        except TimeoutError:
            if started:
                raise
            text = (f"Redis at {self.redis_shown} did not answer within {self.deadline_s:g} s; "
                    "check WORKER_REDIS_URL and that the server is running, then reload")
            wants_json = route_path(scope).startswith(("/api", "/readyz"))
            reply = JSONResponse({"error": text}, 503) if wants_json else _plain(503, text)
            await reply(scope, receive, send)


class SecurityMiddleware:
    """Rejects unauthenticated requests and POSTs without a valid CSRF proof."""

    def __init__(self, app: ASGIApp, guard: Guard, max_body_bytes: int) -> None:
        self.app = app
        self.guard = guard
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        method = request.method
        if not is_public(route_path(scope), method) and not self.guard.authenticated(request):
            await self._challenge(request)(scope, receive, send)
            return
        nonce = request.cookies.get(CSRF_COOKIE)
        fresh_nonce = None if nonce else self.guard.new_csrf_nonce()
        scope.setdefault("state", {})["csrf_token"] = self.guard.csrf_token(nonce or fresh_nonce
                                                                            or "")
        if method not in SAFE_METHODS:
            body = await self._read_body(receive)
            if body is None:
                await _plain(413, "request body too large")(scope, receive, send)
                return
            if not self.guard.csrf_ok(request, body, nonce):
                await _plain(403, _csrf_hint(route_path(scope)))(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, _with_cookie(send, fresh_nonce, scope))

    def _challenge(self, request: Request) -> Response:
        path = request.url.path
        wants_html = "text/html" in request.headers.get("accept", "")
        api = route_path(request.scope).startswith("/api")
        if wants_html and self.guard.uses_token and not api:
            login = f"{root_path(request.scope)}/login?next={quote(path)}"
            return RedirectResponse(login, status_code=303)
        scheme = 'Basic realm="bullpen"' if self.guard.uses_basic else "Bearer"
        return JSONResponse({"error": "authentication required"}, status_code=401,
                            headers={"WWW-Authenticate": scheme})

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _csrf_hint(path: str) -> str:
    if path.startswith("/api/"):
        return ("CSRF check failed: API POSTs must send Content-Type: application/json "
                "(a JSON body, {} if none) or an Authorization: Bearer token")
    return "CSRF check failed: reload the page and submit the form again"


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain")


def _replay(body: bytes, original: Receive) -> Receive:
    """Hands the already-read body on once, then the client's real messages (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _is_page(message: Message, scope: Scope) -> bool:
    """Only dashboard pages carry forms; downloads, probes and JSON get no cookie."""
    content_type = MutableHeaders(scope=message).get("content-type", "")
    return content_type.startswith("text/html") and not route_path(scope).startswith("/exports/")


def _with_cookie(send: Send, nonce: str | None, scope: Scope) -> Send:
    if nonce is None:
        return send
    secure = "; Secure" if scope.get("scheme") == "https" else ""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and _is_page(message, scope):
            headers = MutableHeaders(scope=message)
            headers.append("set-cookie", f"{CSRF_COOKIE}={nonce}; Path=/; HttpOnly; "
                                         f"SameSite=Lax{secure}")
        await send(message)

    return wrapped
