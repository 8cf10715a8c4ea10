"""Who may use the dashboard (token, basic auth, the read-only metrics token), CSRF proofs on
POSTs, and the start-up rule: no open dashboard and no guessable credential in production."""

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
from bullpen.secret_strength import GENERATE, web_credential_problems
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


def check_bind(host: str, settings: Settings) -> list[str]:
    """Refuse what would leave the dashboard open or guessable; return warnings to log.

    In production even a loopback bind counts as public: a reverse proxy in front makes every
    request come from 127.0.0.1. So production needs authentication (or the explicit
    WEB_ALLOW_NO_AUTH opt-out, on loopback only) and strong credentials everywhere.
    """
    basic = settings.web_basic_auth.get_secret_value()
    if basic and ":" not in basic:
        raise SettingsError("WEB_BASIC_AUTH=<hidden>: expected 'user:password' (with a colon)")
    enabled = bool(basic or settings.web_auth_token.get_secret_value())
    public = not is_loopback(host)
    if public and not enabled:
        raise SettingsError(
            f"refusing to listen on {host!r} without authentication: anyone who can reach it "
            "could read job data and retry or remove jobs. Set WEB_AUTH_TOKEN or "
            "WEB_BASIC_AUTH=user:password, or listen on 127.0.0.1 (WEB_HOST).")
    if public or not settings.is_development:
        weak = web_credential_problems(settings.web_auth_token.get_secret_value(), basic,
                                       settings.web_metrics_token.get_secret_value())
        if weak:
            raise SettingsError("refusing to start with guessable credentials: "
                                + "; ".join(weak) + f". Generate tokens with: {GENERATE}")
    if enabled:
        return []
    if not settings.is_development and not settings.web_allow_no_auth:
        raise SettingsError(
            "refusing to start without authentication in production: behind a reverse proxy "
            "every request comes from 127.0.0.1, so anyone reaching the proxy could read job "
            "data and download links, delete exports and pause the queue. Set WEB_AUTH_TOKEN "
            f"(generate one with: {GENERATE}) or WEB_BASIC_AUTH=user:password; on a machine "
            "only you use, WEB_ALLOW_NO_AUTH=true opts out (requests through a proxy are then "
            "refused).")
    why = ("WEB_ALLOW_NO_AUTH=true" if settings.web_allow_no_auth
           else "BULLPEN_ENV=development")
    return [f"NO AUTHENTICATION ({why}): anyone who can reach {host} may use the dashboard; "
            "requests through a proxy (Forwarded, X-Forwarded-*, Via) are refused. "
            "Set WEB_AUTH_TOKEN before exposing it."]


class Guard:
    """Checks credentials and CSRF tokens; keyed by the configured secrets so tokens survive
    restarts and are shared by every web process with the same settings."""

    def __init__(self, settings: Settings) -> None:
        self._token = settings.web_auth_token.get_secret_value()
        self._basic = settings.web_basic_auth.get_secret_value()
        self._metrics = settings.web_metrics_token.get_secret_value()
        material = "\0".join((self._token, self._basic,
                              settings.export_token_secret.get_secret_value()))
        self.key = (hashlib.sha256(b"bullpen-web\0" + material.encode()).digest()
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
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def check_token(self, candidate: str) -> bool:
        return bool(self._token) and hmac.compare_digest(candidate.encode(), self._token.encode())

    def _bearer(self, request: Request) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    def bearer_ok(self, request: Request) -> bool:
        value = self._bearer(request)
        return value is not None and self.check_token(value)

    def metrics_ok(self, request: Request) -> bool:
        """The read-only scraper token: good for GET /metrics and nothing else."""
        value = self._bearer(request)
        return bool(self._metrics) and value is not None and hmac.compare_digest(
            value.encode(), self._metrics.encode())

    def basic_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if not self._basic or scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.encode(), self._basic.encode())

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
