"""Who may use the dashboard (token or basic auth), CSRF checks on POSTs, the bind rule."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import secrets
from urllib.parse import parse_qs

from starlette.requests import Request

from bullpen.errors import SettingsError
from bullpen.settings import Settings

SESSION_COOKIE = "bullpen_session"
CSRF_COOKIE = "bullpen_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, settings: Settings) -> None:
    """Refuse to serve beyond this machine without auth; check the auth settings' shape."""
    basic = settings.web_basic_auth.get_secret_value()
    if basic and ":" not in basic:
        raise SettingsError("WEB_BASIC_AUTH=<hidden>: expected 'user:password' (with a colon)")
    if not is_loopback(host) and not (basic or settings.web_auth_token.get_secret_value()):
        raise SettingsError(
            f"refusing to listen on {host!r} without authentication: anyone who can reach it "
            "could read job data and retry or remove jobs. Set WEB_AUTH_TOKEN or "
            "WEB_BASIC_AUTH=user:password, or listen on 127.0.0.1 (WEB_HOST)."
        )


class Guard:
    """Checks credentials and CSRF tokens; keyed by the configured secrets so tokens survive
    restarts and are shared by every web process with the same settings."""

    def __init__(self, settings: Settings) -> None:
        self._token = settings.web_auth_token.get_secret_value()
        self._basic = settings.web_basic_auth.get_secret_value()
        material = "\0".join((self._token, self._basic,
                              settings.export_token_secret.get_secret_value()))
        self._key = (hashlib.sha256(b"bullpen-web\0" + material.encode()).digest()
                     if material.strip("\0") else os.urandom(32))

    @property
    def enabled(self) -> bool:
        return bool(self._token or self._basic)

    @property
    def uses_token(self) -> bool:
        return bool(self._token)

    @property
    def uses_basic(self) -> bool:
        return bool(self._basic)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        return self._sign("session")

    def check_token(self, candidate: str) -> bool:
        return bool(self._token) and hmac.compare_digest(candidate.encode(), self._token.encode())

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.check_token(value.strip())

    def basic_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if not self._basic or scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.encode(), self._basic.encode())

    def session_ok(self, request: Request) -> bool:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return bool(self._token) and hmac.compare_digest(cookie, self.session_value())

    def authenticated(self, request: Request) -> bool:
        if not self.enabled:
            return True
        return self.bearer_ok(request) or self.basic_ok(request) or self.session_ok(request)

    def new_csrf_nonce(self) -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, nonce: str) -> str:
        return self._sign(f"csrf:{nonce}")

    def csrf_ok(self, request: Request, body: bytes, nonce: str | None) -> bool:
        """A POST is ours if it carries a bearer token (never sent by a browser on its own), is
        JSON (cross-site JSON needs a CORS preflight we never grant), or echoes the CSRF token
        bound to this browser's cookie."""
        if request.headers.get("sec-fetch-site") == "cross-site":
            return False
        if self.bearer_ok(request):
            return True
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "application/json":
            return True
        if not nonce:
            return False
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and media_type == "application/x-www-form-urlencoded":
            sent = parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD, [""])[0]
        return bool(sent) and hmac.compare_digest(sent, self.csrf_token(nonce))
