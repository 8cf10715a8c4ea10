"""Any job Redis holds is shown and acted on safely: odd ids (`/`, `..`), the queue's own key
names, data nested thousands of levels deep, huge values."""

from __future__ import annotations

import re
import sys
from html import unescape
from urllib.parse import urljoin

import httpx
import pytest

from bullpen.adapter import JobOptions, QueueClient
from tests.helpers.web import csrf_token

ODD_IDS = ["../job/victim1", "a/b", "..", ".", "~tilde", "x y?#&%", "repeat:x:1"]


def _nested(levels: int) -> dict[str, object]:
    data: dict[str, object] = {}
    current = data
    for _ in range(levels):
        current["a"] = {}
        current = current["a"]  # type: ignore[assignment]
    return data


async def _add_as_another_producer(client: QueueClient, job_id: str, data: object) -> None:
    """What a Node producer may store: BullMQ accepts these ids and any JSON depth."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # Python's encoder recurses; Node's does not stop at 1000
    try:
        assert await client.add("test.record", data, JobOptions(job_id=job_id)) == job_id
    finally:
        sys.setrecursionlimit(limit)


async def test_odd_ids_link_to_their_own_job_and_actions_hit_only_it(
        http: httpx.AsyncClient, client: QueueClient) -> None:
    await client.pause()  # keep the jobs waiting
    await client.add("test.record", {}, JobOptions(job_id="victim1"))
    for job_id in ODD_IDS:
        await _add_as_another_producer(client, job_id, {"id": job_id})
    listing = (await http.get("/jobs/waiting?size=50")).text
    links = {unescape(href) for href in re.findall(r'href="(/job/[^"]+)"', listing)}
    assert len(links) == len(ODD_IDS) + 1
    for link in links:
        # Resolved as a browser does (dot segments removed), each link shows its own job.
        page = await http.get(urljoin("http://localhost/jobs/waiting", link))
        assert page.status_code == 200, (link, page.text[:300])
    for job_id in ODD_IDS:
        api = await http.get(f"/api/jobs/{_ref(listing, job_id)}")
        assert api.status_code == 200 and api.json()["id"] == job_id
    token = await csrf_token(http)
    action = _form_action(listing, "../job/victim1", "remove")
    removed = await http.post(urljoin("http://localhost/jobs/waiting", action),
                              data={"csrf_token": token})
    assert removed.status_code == 303
    assert await client.get_job("../job/victim1") is None
    assert await client.get_job("victim1") is not None


def _ref(listing: str, job_id: str) -> str:
    """The path segment the listing links `job_id` with."""
    row = listing.split(f'data-job-id="{_html(job_id)}"', 1)[1]
    match = re.search(r'href="/job/([^"]+)"', row)
    assert match, job_id
    return unescape(match.group(1))


def _form_action(listing: str, job_id: str, action: str) -> str:
    row = listing.split(f'data-job-id="{_html(job_id)}"', 1)[1]
    match = re.search(rf'action="(/job/[^"]+/{action})"', row)
    assert match, job_id
    return unescape(match.group(1))


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


async def test_the_queues_own_key_names_are_never_jobs(
        http: httpx.AsyncClient, client: QueueClient) -> None:
    await client.pause()
    token = await csrf_token(http)
    for name in ("meta", "id", "wait"):
        assert (await http.get(f"/job/{name}")).status_code == 404
        assert (await http.get(f"/api/jobs/{name}")).status_code == 404
        assert (await http.post(f"/api/jobs/{name}/remove", json={})).status_code == 404
        await http.post(f"/job/{name}/remove", data={"csrf_token": token})
    assert await client.is_paused()  # removing "job" meta would have dropped the pause flag


@pytest.mark.parametrize("levels", [500, 960, 3000])
async def test_jobs_nested_thousands_of_levels_deep_render_everywhere(
        http: httpx.AsyncClient, client: QueueClient, levels: int) -> None:
    await client.pause()
    await _add_as_another_producer(client, f"deep-{levels}", _nested(levels))
    for path in (f"/job/deep-{levels}", "/jobs/waiting", f"/api/jobs/deep-{levels}",
                 "/api/jobs?state=waiting"):
        response = await http.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    page = (await http.get(f"/job/deep-{levels}")).text
    assert ("nested deeper than 64 levels; not shown" in page
            or "cannot be decoded: nested too deeply" in page)


async def test_huge_values_render_cut_with_a_note(
        http: httpx.AsyncClient, client: QueueClient) -> None:
    await client.pause()
    await client.add("test.record", {"blob": "x" * 3_000_000}, JobOptions(job_id="huge"))
    page = await http.get("/job/huge")
    assert page.status_code == 200 and "more characters not shown" in page.text
    assert len(page.content) < 1_000_000
    assert (await http.get("/jobs/waiting")).status_code == 200
    assert len((await http.get("/api/jobs/huge")).json()["data"]["blob"]) == 3_000_000


async def test_enqueue_refuses_data_nested_too_deeply(http: httpx.AsyncClient) -> None:
    refused = await http.post("/api/jobs", json={"task": "test.record", "data": _nested(70)})
    assert refused.status_code == 400
    assert "is nested 71 levels deep, over the limit of 64; flatten it" in refused.json()["error"]
