"""Auth (token, basic), CSRF on every POST, the bind rule, and secrets never rendered."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from bullpen.adapter import QueueClient
from bullpen.errors import SettingsError
from bullpen.settings import Settings
from bullpen.web import create_app
from bullpen.web.security import check_bind
from tests.helpers.processes import run_cli
from tests.helpers.web import csrf_token

WEB_TOKEN = "web-token-Hq7Zt2Lm9Xr4Wc6Np1Vb8Ks3Jd5Fg0Ye"


def _session(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                             base_url="http://localhost")


@pytest.fixture
async def token_http(web_env: dict[str, str], client: QueueClient
                     ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(web_auth_token=WEB_TOKEN), client=client)
    async with _session(app) as session:
        yield session


def test_bind_refuses_other_hosts_without_auth(web_settings: Settings) -> None:
    development = Settings(bullpen_env="development")
    for host in ("127.0.0.1", "localhost", "::1", "[::1]"):
        assert "NO AUTHENTICATION" in check_bind(host, development)[0]
    with pytest.raises(SettingsError, match=r"refusing to listen on '0\.0\.0\.0' without auth"):
        check_bind("0.0.0.0", development)
    assert check_bind("0.0.0.0", Settings(web_auth_token=WEB_TOKEN)) == []
    with pytest.raises(SettingsError, match="expected 'user:password'"):
        check_bind("127.0.0.1", Settings(web_basic_auth="nocolon"))


def test_cli_exits_2_with_the_reason(web_env: dict[str, str]) -> None:
    result = run_cli(["web", "--host", "0.0.0.0", "--port", "1"], web_env)
    assert result.returncode == 2
    assert "refusing to listen on '0.0.0.0' without authentication" in result.stderr
    assert "WEB_AUTH_TOKEN" in result.stderr


async def test_token_auth_for_api_pages_and_login(token_http: httpx.AsyncClient) -> None:
    assert (await token_http.get("/api/overview")).status_code == 401
    wrong = await token_http.get("/api/overview", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = await token_http.get("/api/overview", headers={"Authorization": f"Bearer {WEB_TOKEN}"})
    assert ok.status_code == 200
    assert (await token_http.get("/healthz")).status_code == 200
    assert (await token_http.get("/metrics")).status_code == 401

    page = await token_http.get("/workers", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/workers"
    token = await csrf_token(token_http, "/login")
    bad = await token_http.post("/login", data={"token": "guess", "csrf_token": token})
    assert bad.status_code == 401 and "not WEB_AUTH_TOKEN" in bad.text
    good = await token_http.post("/login", data={"token": WEB_TOKEN, "csrf_token": token,
                                                 "next": "/workers"})
    assert good.status_code == 303 and good.headers["location"] == "/workers"
    assert WEB_TOKEN not in good.headers["set-cookie"]
    signed_in = await token_http.get("/workers")
    assert signed_in.status_code == 200 and "Sign out" in signed_in.text
    token = await csrf_token(token_http, "/workers")
    out = await token_http.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await token_http.get("/api/workers")).status_code == 401


async def test_basic_auth(web_env: dict[str, str], client: QueueClient) -> None:
    app = create_app(Settings(web_basic_auth="admin:s3cret"), client=client)
    async with _session(app) as session:
        denied = await session.get("/", headers={"Accept": "text/html"})
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == 'Basic realm="bullpen"'
        wrong = base64.b64encode(b"admin:nope").decode()
        assert (await session.get("/", headers={"Authorization": f"Basic {wrong}"})
                ).status_code == 401
        right = base64.b64encode(b"admin:s3cret").decode()
        assert (await session.get("/", headers={"Authorization": f"Basic {right}"})
                ).status_code == 200


async def test_posts_need_a_csrf_proof(http: httpx.AsyncClient) -> None:
    form = {"task": "test.record", "data": "{}"}
    assert (await http.post("/enqueue", data=form)).status_code == 403
    token = await csrf_token(http)
    forged = await http.post("/enqueue", data={**form, "csrf_token": token + "x"})
    assert forged.status_code == 403
    cross = await http.post("/enqueue", data={**form, "csrf_token": token},
                            headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    accepted = await http.post("/enqueue", data={**form, "csrf_token": token})
    assert accepted.status_code == 303 and accepted.headers["location"].startswith("/job/")
    plain = await http.post("/api/queue/pause", content=b"x",
                            headers={"content-type": "text/plain"})
    assert plain.status_code == 403 and "Content-Type: application/json" in plain.text
    assert (await http.get("/queue/pause")).status_code == 405


async def test_job_data_is_escaped(http: httpx.AsyncClient) -> None:
    evil = "<script>alert('x')</script>"
    created = await http.post("/api/jobs", json={"task": "test.record", "data": {"evil": evil}})
    job_id = created.json()["id"]
    for page in (f"/job/{job_id}", "/jobs/waiting"):
        html = (await http.get(page)).text
        assert evil not in html and "&lt;script&gt;" in html


async def test_secrets_are_never_rendered(web_env: dict[str, str]) -> None:
    settings = Settings(worker_redis_url="redis://:hunter2-password@127.0.0.1:6379/0",
                        web_auth_token=WEB_TOKEN)
    async with _session(create_app(settings)) as session:
        headers = {"Authorization": f"Bearer {WEB_TOKEN}"}
        page = await session.get("/enqueue", headers=headers)
        login = await session.get("/login")
    for text in (page.text, login.text):
        assert "hunter2-password" not in text and WEB_TOKEN not in text
        assert web_env["EXPORT_TOKEN_SECRET"] not in text
    assert "redis://:***@127.0.0.1:6379/0" in page.text
