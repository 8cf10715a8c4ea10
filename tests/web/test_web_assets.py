"""The dashboard's one script: served by bullpen itself (under a mount prefix too), allowed by
the content security policy only through a fresh nonce on the page's own <script>."""

from __future__ import annotations

import re

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount

from bullpen.adapter import QueueClient
from bullpen.settings import Settings
from bullpen.web import create_app


def _nonces(response: httpx.Response) -> tuple[str, str]:
    policy = response.headers["content-security-policy"]
    in_header = re.search(r"script-src 'nonce-([^']+)'", policy)
    on_page = re.search(r'<script src="[^"]+" nonce="([^"]+)"', response.text)
    assert in_header and on_page, (policy, response.text[-400:])
    return in_header.group(1), on_page.group(1)


async def test_live_script_and_its_policy(http: httpx.AsyncClient) -> None:
    script = await http.get("/static/live.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "data-live" in script.text and "bullpen-refresh" in script.text
    assert (await http.get("/static/other.js")).status_code == 404
    first, second = await http.get("/"), await http.get("/")
    header, page = _nonces(first)
    assert header == page and _nonces(second)[0] != header
    policy = first.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "'unsafe-inline'" not in policy.split(
        "script-src")[1].split(";")[0]
    assert '<meta name="bullpen-refresh" content="5">' in first.text
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in first.text


async def test_the_script_is_served_under_the_mount_prefix(web_settings: Settings,
                                                            client: QueueClient) -> None:
    host = Starlette(routes=[Mount("/admin/jobs", app=create_app(web_settings, client=client))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host),
                                 base_url="http://localhost") as http:
        page = (await http.get("/admin/jobs/jobs/failed")).text
        src = re.search(r'<script src="([^"]+)"', page)
        assert src and src.group(1).startswith("/admin/jobs/static/live.js?v=")
        assert (await http.get(src.group(1))).status_code == 200


async def test_the_script_is_behind_the_sign_in(web_settings: Settings,
                                                client: QueueClient) -> None:
    token = "web-token-0123456789-abcdefghij"
    guarded = web_settings.model_copy(update={"web_auth_token": SecretStr(token)})
    app = create_app(guarded, client=client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://localhost") as http:
        assert (await http.get("/static/live.js")).status_code == 401
        signed = await http.get("/static/live.js", headers={"Authorization": f"Bearer {token}"})
        assert signed.status_code == 200
