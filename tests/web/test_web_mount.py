"""The dashboard mounted under a prefix of a host app: links, redirects, forms, CSRF, downloads,
sign-in and the host's own authentication hook all stay under the prefix."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount

from bullpen.adapter import QueueClient
from bullpen.exports.service import ExportService
from bullpen.settings import Settings
from bullpen.web import create_app
from bullpen.web.host_auth import AuthHook

PREFIX = "/admin/jobs"
WEB_TOKEN = "web-token-0123456789-abcdefghij"


def _host(dashboard: Starlette) -> httpx.AsyncClient:
    host = Starlette(routes=[Mount(PREFIX, app=dashboard)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=host),
                             base_url="http://localhost")


@pytest.fixture
def mounted(web_settings: Settings, client: QueueClient
            ) -> Callable[..., httpx.AsyncClient]:
    def build(settings: Settings = web_settings, authenticate: AuthHook | None = None
              ) -> httpx.AsyncClient:
        return _host(create_app(settings, client=client, authenticate=authenticate))

    return build


def _links(html: str) -> list[str]:
    return re.findall(r'(?:href|action)="([^"]+)"', html)


async def _csrf(http: httpx.AsyncClient, page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get(page)).text)
    assert found, page
    return found.group(1)


async def test_every_link_and_redirect_stays_under_the_prefix(
        mounted: Callable[..., httpx.AsyncClient]) -> None:
    async with mounted() as http:
        for page in ("/", "/jobs/failed", "/schedules", "/workers", "/exports", "/enqueue"):
            response = await http.get(PREFIX + page)
            assert response.status_code == 200, page
            links = _links(response.text)
            assert links and all(link.startswith(PREFIX + "/") for link in links), (page, links)
        token = await _csrf(http, PREFIX + "/enqueue")
        added = await http.post(PREFIX + "/enqueue", data={
            "csrf_token": token, "task": "test.record", "data": "{}",
            "next": PREFIX + "/enqueue"})
        assert added.status_code == 303
        job_url = added.headers["location"]
        assert re.fullmatch(PREFIX + r"/job/\d+", job_url), job_url
        job_page = await http.get(job_url)
        assert "Enqueued test.record as job" in job_page.text
        assert all(link.startswith(PREFIX + "/") for link in _links(job_page.text))
        removed = await http.post(job_url + "/remove", data={"csrf_token": token})
        assert removed.headers["location"] == PREFIX + "/"
        forged = await http.post(PREFIX + "/queue/pause", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        assert (await http.get(PREFIX + "/no-such-page")).status_code == 404
        assert (await http.get(PREFIX + "/api/nothing")).json() == {"error": "not found"}


async def test_sign_in_and_download_links_under_the_prefix(
        mounted: Callable[..., httpx.AsyncClient], web_settings: Settings) -> None:
    settings = web_settings.model_copy(update={"web_auth_token": SecretStr(WEB_TOKEN)})
    export, _token = ExportService(web_settings).create("r.csv", b"a,b\r\n")
    async with mounted(settings) as http:
        challenge = await http.get(PREFIX + "/schedules", headers={"Accept": "text/html"})
        assert challenge.headers["location"] == f"{PREFIX}/login?next={PREFIX}/schedules"
        form = await http.get(challenge.headers["location"])
        assert f'action="{PREFIX}/login"' in form.text
        assert f'name="next" value="{PREFIX}/schedules"' in form.text
        signed_in = await http.post(PREFIX + "/login", data={
            "token": WEB_TOKEN, "next": f"{PREFIX}/schedules",
            "csrf_token": await _csrf(http, PREFIX + "/login")})
        assert signed_in.headers["location"] == PREFIX + "/schedules"
        link = (await http.post(f"{PREFIX}/api/exports/{export.id}/link", json={})).json()
        assert link["url"].startswith(f"http://localhost{PREFIX}/exports/")
        http.cookies.clear()
        download = await http.get(link["url"])  # a token is its own credential
        assert (download.status_code, download.content) == (200, b"a,b\r\n")
        assert (await http.get(PREFIX + "/healthz")).status_code == 200


async def test_the_host_decides_who_gets_in(mounted: Callable[..., httpx.AsyncClient],
                                            web_settings: Settings) -> None:
    async def staff_only(request: Request) -> bool | Response:
        if request.headers.get("x-staff") == "yes":
            return True
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login?next=" + request.url.path, status_code=303)
        return False

    # bullpen's own token is not asked for once the host decides.
    settings = web_settings.model_copy(update={"web_auth_token": SecretStr(WEB_TOKEN)})
    async with mounted(settings, staff_only) as http:
        assert (await http.get(PREFIX + "/api/overview")).status_code == 403
        page = await http.get(PREFIX + "/", headers={"Accept": "text/html"})
        assert page.headers["location"] == f"/login?next={PREFIX}/"
        allowed = await http.get(PREFIX + "/api/overview", headers={"x-staff": "yes"})
        assert allowed.status_code == 200
        assert (await http.get(PREFIX + "/readyz")).status_code in (200, 503)  # public probe
    async with mounted(settings, lambda request: False) as http:
        assert (await http.get(PREFIX + "/workers")).status_code == 403


async def test_unmounted_links_are_unchanged(web_settings: Settings,
                                             client: QueueClient) -> None:
    app = create_app(web_settings, client=client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://localhost") as http:
        links = _links((await http.get("/")).text)
    assert "/jobs/failed" in links and not any(link.startswith(PREFIX) for link in links)
