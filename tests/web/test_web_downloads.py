"""GET/HEAD /exports/{token}: streaming, headers, ranges, 404 for bad tokens, 410 once gone."""

from __future__ import annotations

from datetime import timedelta

import httpx
import time_machine

from bullpen.exports.service import ExportService
from bullpen.settings import Settings
from tests.helpers.processes import Proc
from tests.helpers.web import wait_for_state

CONTENT = b"id,name\n1,caf\xc3\xa9\n2,tea\n"


def _create(settings: Settings, name: str = "report café.csv") -> tuple[str, str]:
    export, token = ExportService(settings).create(name, CONTENT, content_type="text/csv")
    return export.id, token


async def test_download_streams_the_file_with_its_headers(http: httpx.AsyncClient,
                                                          web_settings: Settings) -> None:
    _, token = _create(web_settings)
    response = await http.get(f"/exports/{token}")
    assert response.status_code == 200 and response.content == CONTENT
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"report caf_.csv\"; filename*=UTF-8''report%20caf%C3%A9.csv")
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["cache-control"] == "private, no-store"
    assert "set-cookie" not in response.headers
    head = await http.head(f"/exports/{token}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(CONTENT))


async def test_byte_ranges(http: httpx.AsyncClient, web_settings: Settings) -> None:
    _, token = _create(web_settings)
    size = len(CONTENT)
    part = await http.get(f"/exports/{token}", headers={"Range": "bytes=3-6"})
    assert part.status_code == 206 and part.content == CONTENT[3:7]
    assert part.headers["content-range"] == f"bytes 3-6/{size}"
    assert part.headers["content-length"] == "4"
    tail = await http.get(f"/exports/{token}", headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == CONTENT[-4:]
    rest = await http.get(f"/exports/{token}", headers={"Range": "bytes=10-"})
    assert rest.content == CONTENT[10:]
    past = await http.get(f"/exports/{token}", headers={"Range": f"bytes={size}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    stale = await http.get(f"/exports/{token}",
                           headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == CONTENT


async def test_bad_tokens_get_a_404_that_says_nothing(http: httpx.AsyncClient,
                                                      web_settings: Settings) -> None:
    _, token = _create(web_settings)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for candidate in (tampered, "garbage", "..%2F..%2Fetc%2Fpasswd"):
        response = await http.get(f"/exports/{candidate}")
        assert response.status_code == 404
        assert "signature" not in response.text and "expired" not in response.text
    other = Settings(export_token_secret="another-secret-Qz8Lw3Rt6Yp1Kd9Xm4Vb7Nc2Hs5Jf0Ga")
    _, foreign = _create(other)
    assert (await http.get(f"/exports/{foreign}")).status_code == 404


async def test_expired_or_deleted_exports_answer_410(http: httpx.AsyncClient,
                                                     web_settings: Settings) -> None:
    export_id, token = _create(web_settings)
    later = timedelta(minutes=web_settings.export_default_expiry_minutes, seconds=5)
    with time_machine.travel(later, tick=False):
        expired = await http.get(f"/exports/{token}")
    assert expired.status_code == 410 and "expired" in expired.text
    assert (await http.get(f"/exports/{token}")).status_code == 200
    ExportService(web_settings).delete(export_id)
    gone = await http.get(f"/exports/{token}")
    assert gone.status_code == 410 and "deleted" in gone.text


async def test_exports_page_lists_deletes_and_makes_fresh_links(http: httpx.AsyncClient,
                                                                web_settings: Settings) -> None:
    export_id, _ = _create(web_settings)
    listed = (await http.get("/api/exports")).json()
    assert [row["id"] for row in listed] == [export_id]
    assert listed[0]["size_bytes"] == len(CONTENT) and listed[0]["expires_in_s"] > 0
    assert "report café.csv" in (await http.get("/exports")).text
    link = (await http.post(f"/api/exports/{export_id}/link", json={})).json()
    assert link["url"].startswith("http://localhost/exports/")
    assert (await http.get(link["url"])).content == CONTENT
    assert (await http.post(f"/api/exports/{export_id}/delete", json={})).json() == {"ok": True}
    assert (await http.get(link["url"])).status_code == 410
    again = await http.post(f"/api/exports/{export_id}/delete", json={})
    assert again.status_code == 404


async def test_link_from_the_exports_create_task_downloads_then_expires(
        http: httpx.AsyncClient, web_settings: Settings, worker: Proc) -> None:
    created = await http.post("/api/jobs", json={
        "task": "exports.create", "data": {"exporter": "jobs.history", "format": "csv"}})
    job_id = created.json()["id"]
    await wait_for_state(http, job_id, "completed")
    result = (await http.get(f"/api/jobs/{job_id}")).json()["return_value"]
    response = await http.get(result["download_path"])
    assert response.status_code == 200
    assert len(response.content) == result["size"] > 0
    assert result["filename"] in response.headers["content-disposition"]
    with time_machine.travel(timedelta(minutes=web_settings.export_default_expiry_minutes + 1),
                             tick=False):
        assert (await http.get(result["download_path"])).status_code == 410
