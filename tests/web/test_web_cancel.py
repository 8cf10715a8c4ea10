"""Cancelling a running job from the API and the job page's button; the dashboard's and the
API's enqueues as PRODUCER spans when tracing is on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace

from bullpen.adapter import QueueClient
from bullpen.settings import Settings
from bullpen.web import create_app
from tests.helpers.otel import observed_env, one, recorded
from tests.helpers.processes import running_worker
from tests.helpers.web import csrf_token, wait_for_state

tracer = trace.get_tracer("tests")


@pytest.fixture
def observed(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> dict[str, str]:
    return observed_env(env, tmp_path, monkeypatch, WORKER_DEFAULT_ATTEMPTS="3")


@pytest.fixture
async def http(observed: dict[str, str], client: QueueClient
               ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), client=client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as session:
        yield session


async def _enqueue(http: httpx.AsyncClient, task: str) -> str:
    response = await http.post("/api/jobs", json={"task": task, "data": {}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_the_api_and_the_job_page_cancel_a_running_job(
        observed: dict[str, str], http: httpx.AsyncClient) -> None:
    with running_worker(observed):
        by_api, by_button = [await _enqueue(http, "cancel.poll") for _ in range(2)]
        for job_id in (by_api, by_button):
            await wait_for_state(http, job_id, "active")
        response = await http.post(f"/api/jobs/{by_api}/cancel", json={})
        assert response.json() == {"ok": True, "id": by_api}
        page = (await http.get(f"/job/{by_button}")).text
        assert f'action="/job/{by_button}/cancel"' in page
        token = await csrf_token(http, f"/job/{by_button}")
        pressed = await http.post(f"/job/{by_button}/cancel", data={
            "csrf_token": token, "next": f"/job/{by_button}"})
        assert pressed.status_code == 303
        for job_id in (by_api, by_button):
            await wait_for_state(http, job_id, "failed")
            detail = (await http.get(f"/api/jobs/{job_id}")).json()
            assert (detail["failed_reason"], detail["attempts_made"]) == ("cancelled", 1)
        again = await http.post(f"/api/jobs/{by_api}/cancel", json={})
        assert again.status_code == 409
        assert again.json()["error"] == (
            f"job '{by_api}' is failed, not running; only active jobs can be cancelled (remove "
            "a waiting or delayed job instead)")
        assert f'action="/job/{by_api}/cancel"' not in (await http.get(f"/job/{by_api}")).text
    missing = await http.post("/api/jobs/nope/cancel", json={})
    assert missing.status_code == 404


async def test_an_api_enqueue_is_a_producer_span_of_the_request_s_trace(
        observed: dict[str, str], http: httpx.AsyncClient, queue_name: str) -> None:
    with tracer.start_as_current_span("POST /api/jobs"):
        job_id = await _enqueue(http, "traced.work")
    request, add = one(recorded(), "POST /api/jobs"), one(recorded(),
                                                          f"add {queue_name}.traced.work")
    assert add["parent_id"] == request["span_id"] and add["kind"] == "PRODUCER"
    assert add["attributes"]["bullmq.job.id"] == job_id
