"""The dashboard and API about one queue: the /q/<queue>/ prefix, `?queue=`, the picker, a
mounted dashboard, and the answers to a name no queue can have."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from bullpen.adapter import JobOptions, QueueClient
from bullpen.settings import Settings
from bullpen.web import create_app

PREFIX = "/admin/jobs"


@pytest.fixture
def slow_settings(web_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The sample app with `test.span` declared on `<queue>-slow`."""
    slow = f"{web_env['WORKER_DEFAULT_QUEUE']}-slow"
    monkeypatch.setenv("WORKER_QUEUES", f"{web_env['WORKER_DEFAULT_QUEUE']},{slow}")
    return Settings()


@pytest.fixture
async def slow_client(redis_url: str, queue_name: str) -> AsyncIterator[QueueClient]:
    queue = QueueClient(redis_url, f"{queue_name}-slow")
    yield queue
    await queue.close()


@pytest.fixture
async def mounted(slow_settings: Settings, client: QueueClient
                  ) -> AsyncIterator[httpx.AsyncClient]:
    dashboard = create_app(slow_settings, client=client)
    host = Starlette(routes=[Mount(PREFIX, app=dashboard)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host),
                                 base_url="http://localhost") as http:
        yield http
    # httpx's transport runs no lifespan: close the other queues' clients as it would.
    await dashboard.state.web.close(keep=client)


async def test_a_queue_prefix_scopes_pages_links_and_the_api_under_a_mount(
        mounted: httpx.AsyncClient, client: QueueClient, slow_client: QueueClient) -> None:
    slow = slow_client.name
    on_slow = await slow_client.add("test.record", {"on": "slow"}, JobOptions(delay_ms=60_000))
    on_default = await client.add("test.record", {"on": "default"}, JobOptions(delay_ms=60_000))
    assert on_slow == on_default  # each queue numbers its own jobs
    page = await mounted.get(f"{PREFIX}/q/{slow}/jobs/delayed")
    assert page.status_code == 200
    links = re.findall(r'(?:href|action)="([^"]+)"', page.text)
    assert f"{PREFIX}/q/{slow}/job/{on_slow}" in links
    assert all(link.startswith(PREFIX + "/") for link in links), links
    # The picker: the same page on every known queue, the default one without a prefix.
    assert f"{PREFIX}/jobs/delayed" in links and f"{PREFIX}/q/{slow}/jobs/delayed" in links
    detail = (await mounted.get(f"{PREFIX}/q/{slow}/api/jobs/{on_slow}")).json()
    assert detail["data"] == {"on": "slow"}
    assert (await mounted.get(f"{PREFIX}/api/jobs/{on_slow}")).json()["data"] == {
        "on": "default"}
    assert (await mounted.get(f"{PREFIX}/api/overview?queue={slow}")).json()["queue"] == slow
    job_page = await mounted.get(f"{PREFIX}/q/{slow}/job/{on_slow}")
    # A job's page leads to the other queues' overviews (their job 1 is another job).
    assert f'href="{PREFIX}/"' in job_page.text


async def test_the_api_enqueues_on_the_task_queue_or_the_one_named(
        mounted: httpx.AsyncClient, client: QueueClient, slow_client: QueueClient) -> None:
    named = await mounted.post(f"{PREFIX}/api/jobs", json={
        "task": "test.record", "queue": slow_client.name, "data": {"n": 1}})
    assert named.status_code == 201 and named.json()["queue"] == slow_client.name, named.text
    assert await slow_client.get_job(named.json()["id"]) is not None
    # From a page of the slow queue, a task of the default queue still goes there.
    routed = await mounted.post(f"{PREFIX}/q/{slow_client.name}/api/jobs",
                                json={"task": "test.record"})
    assert routed.json()["queue"] == client.name


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/api/jobs?queue=a:b", 400, "queue name 'a:b' cannot be used"),
    ("/api/overview?queue=a%20b", 400, "queue name 'a b' cannot be used"),
    ("/jobs/failed?queue=a,b", 400, "queue name &#39;a,b&#39; cannot be used"),
    ("/q/a:b/api/overview", 404, "No such page"),
    ("/q/.../api/overview", 404, "No such page"),
])
async def test_a_name_no_queue_can_have_is_refused_with_the_value(
        mounted: httpx.AsyncClient, path: str, status: int, text: str) -> None:
    answer = await mounted.get(PREFIX + path)
    assert answer.status_code == status, answer.text
    assert text in answer.text


async def test_an_enqueue_to_a_bad_queue_writes_nothing(
        mounted: httpx.AsyncClient, client: QueueClient) -> None:
    for queue in ("a:b", 5):
        refused = await mounted.post(f"{PREFIX}/api/jobs",
                                     json={"task": "test.record", "queue": queue})
        assert refused.status_code == 400 and str(queue) in refused.text
    assert (await client.get_counts())["waiting"] == 0
