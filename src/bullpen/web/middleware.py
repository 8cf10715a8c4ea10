"""ASGI middleware: request deadlines, and every security check a request passes before a route
sees it (Host, proxy, authentication, Origin, CSRF) plus the headers every response carries."""

from __future__ import annotations

import asyncio
import math
import secrets
from urllib.parse import quote

from redis.exceptions import RedisError
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bullpen.web.hosts import HostPolicy
from bullpen.web.paths import root_path, route_path
from bullpen.web.security import CSRF_COOKIE, SESSION_COOKIE, Guard
from bullpen.web.sessions import SessionStore
from bullpen.web.throttle import FailureThrottle

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
PUBLIC_PATHS = PROBE_PATHS | {"/login"}
# The list filters submit themselves from an inline handler; only that one is allowed. Scripts
# otherwise run only from the page's own <script nonce> (live refresh: web/static/live.js), and
# it may fetch from this origin only.
_FILTER_HANDLER = "'sha256-osjxnKEPL/pQJbFk1dKsF7PYFmTyMWGmVSiL9inhxJY='"
CSP_TEMPLATE = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "script-src 'nonce-{nonce}' 'unsafe-hashes' " + _FILTER_HANDLER + "; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def is_public(path: str, method: str) -> bool:
    # A download link is its own credential: whoever holds an unexpired token may fetch the file.
    return path in PUBLIC_PATHS or (path.startswith("/exports/") and method in SAFE_METHODS)


def is_proxied(request: Request) -> bool:
    return any(name in ("forwarded", "via") or name.startswith("x-forwarded-")
               for name in request.headers)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


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
            # Probes and the sign-in page are public: they never name the server.
            path = route_path(scope)
            where = "" if is_public(path, scope["method"]) else f" at {self.redis_shown}"
            text = (f"Redis{where} did not answer within {self.deadline_s:g} s; check "
                    "WORKER_REDIS_URL and that the server is running, then reload")
            wants_json = path.startswith(("/api", "/readyz"))
            reply = JSONResponse({"error": text}, 503) if wants_json else _plain(503, text)
            await reply(scope, receive, send)


class SecurityMiddleware:
    """Refuses what fails a check, answers the rest with the security headers on."""

    def __init__(self, app: ASGIApp, guard: Guard, sessions: SessionStore, hosts: HostPolicy,
                 throttle: FailureThrottle, max_body_bytes: int,
                 cookie_secure: bool | None = None, host_app_auth: bool = False) -> None:
        self.app = app
        self.guard = guard
        self.sessions = sessions
        self.hosts = hosts
        self.throttle = throttle
        self.max_body_bytes = max_body_bytes
        self.cookie_secure = cookie_secure
        # Mounted in a host app that signs users in itself (create_app(authenticate=…)): the host
        # app answers for its Host names and its proxy; Origin and CSRF are still checked here.
        self.host_app_auth = host_app_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _hardened(send, scope, self.cookie_secure)
        request = Request(scope)
        refusal = self._refused_early(request) or await self._unauthenticated(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        nonce = request.cookies.get(CSRF_COOKIE)
        fresh_nonce = None if nonce else self.guard.new_csrf_nonce()
        scope.setdefault("state", {})["csrf_token"] = self.guard.csrf_token(nonce or fresh_nonce
                                                                            or "")
        if request.method not in SAFE_METHODS:
            body = await self._read_body(receive)
            if body is None:
                await _plain(413, "request body too large")(scope, receive, send)
                return
            if not self.guard.csrf_ok(request, body, nonce):
                await _plain(403, _csrf_hint(route_path(scope)))(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, _with_cookie(send, fresh_nonce, scope))

    def _refused_early(self, request: Request) -> Response | None:
        """Host, proxy and Origin: checks that need neither credentials nor Redis."""
        path, host = route_path(request.scope), request.headers.get("host", "")
        delegated = self.host_app_auth
        if path not in PROBE_PATHS and not delegated and not self.hosts.host_ok(host):
            return _plain(400, f"Host {host[:100]!r} is not served here (serving "
                               f"{self.hosts.describe()}); add it to WEB_ALLOWED_HOSTS")
        if not (self.guard.enabled or delegated) and is_proxied(request) \
                and not is_public(path, request.method):
            return _plain(403, "this dashboard has no authentication, so requests through a "
                               "proxy (Forwarded, X-Forwarded-*, Via) are refused; set "
                               "WEB_AUTH_TOKEN to serve it behind one")
        origin = request.headers.get("origin", "")
        if request.method not in SAFE_METHODS and not self.hosts.origin_ok(origin, host):
            return _plain(403, f"cross-origin request refused (Origin {origin[:100]!r}); "
                               "post from the dashboard's own pages")
        return None

    async def _unauthenticated(self, request: Request) -> Response | None:
        path, method = route_path(request.scope), request.method
        if is_public(path, method) or not self.guard.enabled:
            return None
        if path == "/metrics" and method in SAFE_METHODS and self.guard.metrics_ok(request):
            return None
        if "authorization" in request.headers:
            return self._credential(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie and self.guard.uses_token:
            try:
                if await self.sessions.valid(cookie):
                    return None
            except (RedisError, OSError) as exc:
                return _plain(503, f"cannot check the sign-in session: Redis is unreachable "
                                   f"({type(exc).__name__}); retry, or send the token in an "
                                   "Authorization: Bearer header")
        return self._challenge(request)

    def _credential(self, request: Request) -> Response | None:
        """A bearer or basic credential: checked unless this client has failed too often."""
        client = client_address(request.scope)
        wait_s = self.throttle.retry_after_s(client)
        if wait_s:
            return too_many_failures(wait_s, route_path(request.scope).startswith("/api"))
        if self.guard.bearer_ok(request) or self.guard.basic_ok(request):
            return None
        self.throttle.failed(client)
        return self._challenge(request)

    def _challenge(self, request: Request) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        api = route_path(request.scope).startswith("/api")
        if wants_html and self.guard.uses_token and not api:
            login = f"{root_path(request.scope)}/login?next={quote(request.url.path)}"
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


def too_many_failures(wait_s: float, as_json: bool) -> Response:
    text = (f"too many failed sign-in attempts from this address; try again in "
            f"{math.ceil(wait_s)} s")
    headers = {"Retry-After": str(math.ceil(wait_s))}
    if as_json:
        return JSONResponse({"error": text}, status_code=429, headers=headers)
    return Response(text, status_code=429, media_type="text/plain", headers=headers)


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


def _hardened(send: Send, scope: Scope, cookie_secure: bool | None) -> Send:
    """Adds the security headers a response lacks, and `Secure` to every cookie when the
    setting says so or, unset, when the request came over https (directly, or through a proxy
    trusted by WEB_TRUSTED_PROXIES)."""
    secure = cookie_secure if cookie_secure is not None else scope.get("scheme") == "https"
    # A fresh nonce per response: pages put it on their one <script> element (templating.py).
    nonce = secrets.token_urlsafe(18)
    scope.setdefault("state", {})["csp_nonce"] = nonce

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.setdefault("content-security-policy", CSP_TEMPLATE.format(nonce=nonce))
            for name, value in SECURITY_HEADERS.items():
                headers.setdefault(name, value)
            if secure:
                message["headers"] = [
                    (name, value + b"; Secure" if name.lower() == b"set-cookie"
                     and b"; secure" not in value.lower() else value)
                    for name, value in message["headers"]]
        await send(message)

    return wrapped


def _is_page(message: Message, scope: Scope) -> bool:
    """Only dashboard pages carry forms; downloads, probes and JSON get no cookie."""
    content_type = MutableHeaders(scope=message).get("content-type", "")
    return content_type.startswith("text/html") and not route_path(scope).startswith("/exports/")


def _with_cookie(send: Send, nonce: str | None, scope: Scope) -> Send:
    if nonce is None:
        return send

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and _is_page(message, scope):
            headers = MutableHeaders(scope=message)
            headers.append("set-cookie", f"{CSRF_COOKIE}={nonce}; Path=/; HttpOnly; "
                                         "SameSite=Lax")
        await send(message)

    return wrapped
