"""The audit's attacks on `bullpen web`, through real HTTP against a real process: an open
dashboard behind a proxy, DNS rebinding, weak and guessed credentials, sessions, public pages,
response headers, Secure cookies and the read-only metrics token."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from bullpen.errors import ExportError
from bullpen.exports import naming
from bullpen.exports.service import ExportService
from bullpen.settings import Settings
from tests.helpers.processes import Proc, run_cli
from tests.helpers.redis_server import free_port
from tests.helpers.web import running_web

TOKEN = "web-token-Hq7Zt2Lm9Xr4Wc6Np1Vb8Ks3Jd5Fg0Ye"
METRICS_TOKEN = "metrics-Rk4Vz8Qp2Lx6Tm1Wn9Hb3Jc7Fd5Gs0Ya"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PROXY_HEADERS = [{"X-Forwarded-For": "203.0.113.9"}, {"X-Forwarded-Proto": "https"},
                 {"Forwarded": "for=203.0.113.9;proto=https"}, {"Via": "1.1 proxy"},
                 {"X-Forwarded-Host": "dash.example.com"}]


@pytest.fixture
def open_web(web_env: dict[str, str]) -> Iterator[tuple[Proc, str]]:
    """`bullpen web` in production with the explicit opt-out from authentication."""
    with running_web({**web_env, "WEB_ALLOW_NO_AUTH": "true"}) as running:
        yield running


@pytest.fixture
def token_web(web_env: dict[str, str]) -> Iterator[tuple[Proc, str]]:
    env = {**web_env, "WEB_AUTH_TOKEN": TOKEN, "WEB_METRICS_TOKEN": METRICS_TOKEN,
           "WEB_SESSION_MAX_AGE_S": "2"}
    with running_web(env) as running:
        yield running


def _port(base: str) -> str:
    return base.rsplit(":", 1)[1]


def test_production_refuses_to_start_without_auth(web_env: dict[str, str]) -> None:
    result = run_cli(["web", "--port", str(free_port())], web_env)
    assert result.returncode == 2
    assert "refusing to start without authentication in production" in result.stderr
    assert "WEB_AUTH_TOKEN" in result.stderr and "WEB_ALLOW_NO_AUTH=true" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr


def test_opt_out_warns_and_refuses_proxied_requests(open_web: tuple[Proc, str]) -> None:
    proc, base = open_web
    proc.wait_for("NO AUTHENTICATION (WEB_ALLOW_NO_AUTH=true)")
    assert httpx.get(f"{base}/api/overview").status_code == 200
    for headers in PROXY_HEADERS:
        refused = httpx.get(f"{base}/api/overview", headers=headers)
        assert refused.status_code == 403, headers
        assert "no authentication" in refused.text and "WEB_AUTH_TOKEN" in refused.text
        assert httpx.post(f"{base}/api/queue/pause", json={}, headers=headers
                          ).status_code == 403
    assert httpx.get(f"{base}/api/overview").json()["paused"] is False
    assert httpx.get(f"{base}/healthz", headers=PROXY_HEADERS[0]).status_code == 200


def test_development_mode_may_run_without_auth_with_a_warning(web_env: dict[str, str]) -> None:
    with running_web({**web_env, "BULLPEN_ENV": "development"}) as (proc, base):
        proc.wait_for("NO AUTHENTICATION (BULLPEN_ENV=development)")
        assert httpx.get(f"{base}/api/overview").status_code == 200


def test_only_configured_hosts_are_answered(open_web: tuple[Proc, str]) -> None:
    _, base = open_web
    port = _port(base)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert httpx.get(f"{base}/api/overview", headers={"Host": host}).status_code == 200
    for host in (f"attacker.test:{port}", "127.0.0.1.attacker.test", "", "a b"):
        refused = httpx.get(f"{base}/api/overview", headers={"Host": host})
        assert refused.status_code == 400, host
        assert "WEB_ALLOWED_HOSTS" in refused.text
    rebound = {"Host": f"attacker.test:{port}"}
    assert httpx.post(f"{base}/api/queue/pause", json={}, headers=rebound).status_code == 400
    assert httpx.get(f"{base}/exports/anything", headers=rebound).status_code == 400
    assert httpx.get(f"{base}/healthz", headers=rebound).status_code == 200  # probes: any host


def test_state_changing_requests_check_origin(open_web: tuple[Proc, str]) -> None:
    _, base = open_web
    for origin in ("http://attacker.test", f"http://attacker.test:{_port(base)}", "null",
                   "file://"):
        refused = httpx.post(f"{base}/api/queue/pause", json={}, headers={"Origin": origin})
        assert refused.status_code == 403, origin
        assert "cross-origin request refused" in refused.text
    assert httpx.get(f"{base}/api/overview").json()["paused"] is False
    same = httpx.post(f"{base}/api/queue/pause", json={}, headers={"Origin": base})
    assert same.status_code == 200 and same.json() == {"ok": True, "paused": True}


def test_allowed_hosts_setting_replaces_the_defaults(web_env: dict[str, str]) -> None:
    env = {**web_env, "WEB_AUTH_TOKEN": TOKEN, "WEB_ALLOWED_HOSTS": "dash.example.com"}
    with running_web(env) as (_, base):
        named = {"Host": "dash.example.com", **ADMIN}
        assert httpx.get(f"{base}/api/overview", headers=named).status_code == 200
        assert httpx.get(f"{base}/api/overview", headers=ADMIN).status_code == 400
        post = httpx.post(f"{base}/api/queue/pause", json={},
                          headers={**named, "Origin": "https://dash.example.com"})
        assert post.status_code == 200


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("WEB_AUTH_TOKEN", "x", "WEB_AUTH_TOKEN is 1 bytes, shorter than the 32 required"),
    ("WEB_AUTH_TOKEN", " ", "WEB_AUTH_TOKEN is 1 bytes"),
    ("WEB_AUTH_TOKEN", "a" * 40, "WEB_AUTH_TOKEN looks guessable"),
    ("WEB_BASIC_AUTH", ":", "WEB_BASIC_AUTH has an empty user name"),
    ("WEB_BASIC_AUTH", "admin:", "WEB_BASIC_AUTH's password is empty"),
    ("WEB_BASIC_AUTH", "admin:password12345678", "WEB_BASIC_AUTH's password looks guessable"),
    ("WEB_METRICS_TOKEN", "metrics", "WEB_METRICS_TOKEN is 7 bytes"),
])
@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_guessable_credentials_are_refused(web_env: dict[str, str], variable: str, value: str,
                                           problem: str, host: str) -> None:
    env = {**web_env, "WEB_AUTH_TOKEN": TOKEN, variable: value}
    result = run_cli(["web", "--host", host, "--port", str(free_port())], env)
    assert result.returncode == 2, result.stderr
    assert "refusing to start with guessable credentials" in result.stderr
    assert problem in result.stderr
    assert len(value) < 8 or value not in result.stderr  # a secret is never echoed


def test_repeated_failures_are_slowed_down(web_env: dict[str, str]) -> None:
    with running_web({**web_env, "WEB_AUTH_TOKEN": TOKEN}) as (_, base):
        started = time.monotonic()
        codes = [httpx.get(f"{base}/api/overview",
                           headers={"Authorization": f"Bearer guess-{n}"}).status_code
                 for n in range(30)]
        assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes
        throttled = httpx.get(f"{base}/api/overview", headers=ADMIN)
        assert throttled.status_code == 429  # even a right guess is not checked meanwhile
        assert 1 <= int(throttled.headers["retry-after"]) <= 6
        login = httpx.post(f"{base}/login", data={"token": TOKEN})
        assert login.status_code in (403, 429)  # no CSRF proof, or throttled: never a session
        assert time.monotonic() - started < 10


def _sign_in(base: str) -> httpx.Client:
    session = httpx.Client(base_url=base)
    page = session.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    signed = session.post("/login", data={"token": TOKEN, "csrf_token": token.group(1)})
    assert signed.status_code == 303, signed.text
    return session


def test_sessions_are_random_expire_and_end_at_logout(token_web: tuple[Proc, str]) -> None:
    _, base = token_web
    first, second = _sign_in(base), _sign_in(base)
    cookies = {first.cookies["bullpen_session"], second.cookies["bullpen_session"]}
    assert len(cookies) == 2 and TOKEN not in "".join(cookies)
    assert first.get("/api/overview").status_code == 200
    stolen = first.cookies["bullpen_session"]
    page = first.get("/workers")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    assert first.post("/logout", data={"csrf_token": csrf.group(1)}).status_code == 303
    replayed = httpx.get(f"{base}/api/overview", cookies={"bullpen_session": stolen})
    assert replayed.status_code == 401  # logout revoked it, whatever the browser kept
    kept = second.cookies["bullpen_session"]
    assert second.get("/api/overview").status_code == 200
    time.sleep(2.5)  # WEB_SESSION_MAX_AGE_S=2; a browser would drop the cookie, a thief not
    assert httpx.get(f"{base}/api/overview", cookies={"bullpen_session": kept}
                     ).status_code == 401


def test_public_pages_show_nothing_internal(token_web: tuple[Proc, str],
                                            web_env: dict[str, str]) -> None:
    _, base = token_web
    queue = web_env["WORKER_DEFAULT_QUEUE"]
    for path in ("/exports/a/b", "/exports/a/b/c", "/exports/not-a-token", "/login"):
        page = httpx.get(f"{base}{path}", headers={"Accept": "text/html"})
        assert page.status_code in (200, 404), (path, page.status_code)
        for internal in (queue, "6379", "redis://", "127.0.0.1", "dojo-slims"):
            assert internal not in page.text, (path, internal)


def test_security_headers_on_pages_and_api(token_web: tuple[Proc, str]) -> None:
    _, base = token_web
    for path in ("/", "/api/overview", "/login", "/exports/a/b"):
        headers = httpx.get(f"{base}{path}", headers=ADMIN).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert "no-store" in headers["cache-control"]


def _cookies(response: httpx.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie value, for each cookie a response sets."""
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


def test_cookies_are_secure_behind_a_trusted_proxy(token_web: tuple[Proc, str]) -> None:
    _, base = token_web
    assert "secure" not in httpx.get(f"{base}/login").headers["set-cookie"].lower()
    https = {"X-Forwarded-Proto": "https"}  # from 127.0.0.1, a trusted proxy by default
    page = httpx.get(f"{base}/login", headers=https)
    csrf_cookie = _cookies(page)["bullpen_csrf"]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None and "; secure" in csrf_cookie.lower()
    # Secure cookies are not sent back over plain http by a client: sent by hand here.
    jar = {"Cookie": csrf_cookie.split(";", 1)[0], **https}
    signed = httpx.post(f"{base}/login", data={"token": TOKEN, "csrf_token": csrf.group(1)},
                        headers=jar)
    session = _cookies(signed)["bullpen_session"]
    assert "; secure" in session.lower()
    jar["Cookie"] += "; " + session.split(";", 1)[0]
    flash = httpx.post(f"{base}/queue/pause", data={"csrf_token": csrf.group(1)}, headers=jar)
    assert flash.status_code == 303, flash.text
    assert "; secure" in _cookies(flash)["bullpen_flash"].lower()


@pytest.mark.parametrize(("extra", "secure"), [
    ({"WEB_TRUSTED_PROXIES": "10.0.0.1"}, False),  # the header is not believed from us
    ({"WEB_TRUSTED_PROXIES": "10.0.0.1", "WEB_COOKIE_SECURE": "true"}, True),
    ({"WEB_COOKIE_SECURE": "false"}, False),
])
def test_secure_follows_the_setting_and_trusted_proxies(
        web_env: dict[str, str], extra: dict[str, str], secure: bool) -> None:
    with running_web({**web_env, "WEB_AUTH_TOKEN": TOKEN, **extra}) as (_, base):
        page = httpx.get(f"{base}/login", headers={"X-Forwarded-Proto": "https"})
        assert ("; secure" in page.headers["set-cookie"].lower()) is secure


def test_metrics_token_reads_metrics_and_nothing_else(token_web: tuple[Proc, str]) -> None:
    _, base = token_web
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    metrics = httpx.get(f"{base}/metrics", headers=scraper)
    assert metrics.status_code == 200 and "bullpen_jobs" in metrics.text
    assert httpx.get(f"{base}/metrics", headers=ADMIN).status_code == 200
    assert httpx.get(f"{base}/metrics").status_code == 401
    for method, path in (("GET", "/api/overview"), ("GET", "/"), ("GET", "/api/jobs"),
                         ("POST", "/api/queue/pause"), ("POST", "/metrics")):
        response = httpx.request(method, f"{base}{path}", headers=scraper, json={})
        assert response.status_code in (401, 405), (method, path, response.status_code)
    assert httpx.get(f"{base}/api/overview", headers=ADMIN).json()["paused"] is False


def test_odd_exports_download_whole(token_web: tuple[Proc, str], web_settings: Settings) -> None:
    _, base = token_web
    service = ExportService(web_settings)
    _, empty_token = service.create("empty.csv", b"")
    for wanted in ("bytes=-5", "bytes=0-", "bytes=0-0"):
        response = httpx.get(f"{base}/exports/{empty_token}", headers={"Range": wanted})
        assert response.status_code == 200 and response.content == b"", wanted
        assert "content-range" not in response.headers
    with pytest.raises(ExportError, match="is not a media type"):
        service.create("r.csv", b"a\n", content_type="text/csv\r\nX-Evil: 1")
    # Metadata written by hand, or by an older version, with a CR LF in the content type.
    export, token = service.create("r.csv", b"a,b\n", content_type="text/csv")
    meta = web_settings.export_path / naming.meta_name(export.id)
    record = json.loads(meta.read_text())
    meta.write_text(json.dumps({**record, "content_type": "text/csv\r\nX-Evil: 1"}))
    response = httpx.get(f"{base}/exports/{token}")
    assert response.status_code == 200 and response.content == b"a,b\n"
    assert response.headers["content-type"] == "application/octet-stream"
    assert "x-evil" not in response.headers
    assert "sandbox" in response.headers["content-security-policy"]
