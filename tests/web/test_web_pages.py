"""Every dashboard page renders from real queue data; forms redirect with a one-shot message."""

from __future__ import annotations

import re

import httpx

from bullpen.adapter import JOB_STATES, JobOptions, QueueClient
from bullpen.settings import Settings
from bullpen.web import create_app
from tests.helpers.processes import Proc
from tests.helpers.web import csrf_token, running_web, wait_until


def _job_rows(page: str) -> list[str]:
    """The job ids a job list shows, in order."""
    return re.findall(r'<tr data-job-id="([^"]+)"', page)


def _worker_rows(page: str) -> list[str]:
    """The rows of the workers table, as HTML."""
    match = re.search(r'<table id="workers".*?<tbody>(.*?)</tbody>', page, re.S)
    assert match, page[:500]
    return re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)


async def test_every_page_renders(http: httpx.AsyncClient) -> None:
    waiting = (await http.post("/api/jobs", json={"task": "test.record", "data": {"n": 1}})).json()
    await http.post("/api/jobs", json={"task": "test.record", "delay_ms": 60_000})
    pages = ["/", "/enqueue", "/schedules", "/workers", "/exports", f"/job/{waiting['id']}",
             "/jobs/waiting?task=test.record&page=2", "/jobs/waiting?task=test.slow",
             *[f"/jobs/{state}" for state in JOB_STATES]]
    for page in pages:
        response = await http.get(page)
        assert response.status_code == 200, (page, response.text[:500])
        assert 'http-equiv="refresh"' in response.text or page in ("/enqueue", "/exports")
    listed = (await http.get("/jobs/delayed")).text
    assert "Promote" in listed and "test.record" in listed
    assert len(_job_rows(listed)) == 1 and waiting["id"] not in _job_rows(listed)
    assert _job_rows((await http.get("/jobs/waiting")).text) == [waiting["id"]]
    assert "No worker has sent a heartbeat" in (await http.get("/workers")).text
    assert (await http.get("/jobs/sleeping")).status_code == 404
    assert "not found" in (await http.get("/job/999999")).text
    missing = await http.get("/no/such/page")
    assert missing.status_code == 404 and "No such page" in missing.text


async def test_forms_redirect_with_a_message_once(http: httpx.AsyncClient) -> None:
    token = await csrf_token(http)
    bad = await http.post("/enqueue", data={"task": "test.record", "data": "{oops",
                                            "csrf_token": token, "next": "/enqueue"})
    assert bad.status_code == 303 and bad.headers["location"] == "/enqueue"
    shown = await http.get("/enqueue")
    assert "data is not valid JSON" in shown.text and 'class="flash error"' in shown.text
    assert "data is not valid JSON" not in (await http.get("/enqueue")).text

    paused = await http.post("/queue/pause", data={"csrf_token": token, "next": "//evil.example"})
    assert paused.headers["location"] == "/"
    assert "paused" in (await http.get("/")).text
    await http.post("/queue/resume", data={"csrf_token": token})

    ran = await http.post("/schedules/cleanup-exports-hourly/run", data={"csrf_token": token})
    assert ran.status_code == 303 and ran.headers["location"].startswith("/job/")
    detail = await http.get(ran.headers["location"])
    assert "exports.cleanup" in detail.text and "run now as job" in detail.text


async def test_redis_down_answers_503_with_the_reason(web_env: dict[str, str]) -> None:

    app = create_app(Settings(worker_redis_url="redis://:pw-hidden@127.0.0.1:1/0"),
                     request_deadline_s=3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as session:
        api = await session.get("/api/overview")
        assert api.status_code == 503
        # The queue's client gives up within half a second: the reason, not the deadline.
        assert "Redis at redis://:***@127.0.0.1:1/0 is unreachable" in api.json()["error"]
        page = await session.get("/")
        assert page.status_code == 503 and "WORKER_REDIS_URL" in page.text
        assert "pw-hidden" not in page.text + api.text
        ready = await session.get("/readyz")
        assert ready.status_code == 503 and not ready.json()["checks"]["redis"]["ok"]


async def test_bullpen_web_shows_a_running_worker_and_its_jobs_as_rows(
        web_env: dict[str, str], worker: Proc, client: QueueClient) -> None:
    done = await client.add("test.record", {"n": 1}, JobOptions())
    later = await client.add("test.record", {"n": 2}, JobOptions(delay_ms=60_000))
    with running_web({**web_env, "WEB_ALLOW_NO_AUTH": "true"}) as (_, base):
        async with httpx.AsyncClient(base_url=base) as web:
            async def completed() -> bool:
                page = (await web.get("/jobs/completed")).text
                return _job_rows(page) == [done]

            await wait_until(completed)
            delayed = _job_rows((await web.get("/jobs/delayed")).text)
            assert [job for job in delayed if not job.startswith("repeat:")] == [later]
            page = (await web.get("/workers")).text
    [row] = _worker_rows(page)
    assert f'<td data-label="PID" class="wide-only">{worker.popen.pid}</td>' in row
    assert '<td data-label="Concurrency" class="wide-only">5</td>' in row
    assert 'id="worker-count" data-live>(1)</span>' in page
