"""Bulk retry and remove on a selection: through the API, and through the dashboard's form with
its confirmation step; each job by the single-job rules, refusals reported per job."""

from __future__ import annotations

import re

import httpx

from bullpen.web import actions
from tests.helpers.processes import Proc
from tests.helpers.web import csrf_token, wait_for_state


async def _enqueue(http: httpx.AsyncClient, task: str, data: object) -> str:
    response = await http.post("/api/jobs", json={"task": task, "data": data})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _failed(http: httpx.AsyncClient, count: int) -> list[str]:
    ids = [await _enqueue(http, "test.flaky", {"succeed_on": 2}) for _ in range(count)]
    for job_id in ids:
        await wait_for_state(http, job_id, "failed")
    return ids


async def test_api_bulk_retry_and_remove(http: httpx.AsyncClient, worker: Proc) -> None:
    failed = await _failed(http, 3)
    retried = await http.post("/api/jobs/bulk", json={
        "action": "retry", "ids": [failed[0], failed[1], failed[0], "no-such-job"]})
    body = retried.json()
    assert body["done"] == failed[:2] and body["ok"] is False
    assert list(body["refused"]) == ["no-such-job"]
    assert "not found" in body["refused"]["no-such-job"]
    for job_id in failed[:2]:
        await wait_for_state(http, job_id, "completed")
    assert (await http.get(f"/api/jobs/{failed[2]}")).json()["state"] == "failed"

    removed = await http.post("/api/jobs/bulk", json={"action": "remove", "ids": failed})
    assert removed.json() == {"ok": True, "action": "remove", "done": failed, "refused": {}}
    assert (await http.get(f"/api/jobs/{failed[0]}")).status_code == 404


async def test_api_bulk_refuses_what_it_cannot_do(http: httpx.AsyncClient) -> None:
    waiting = await _enqueue(http, "test.record", {})
    retried = (await http.post("/api/jobs/bulk", json={"action": "retry",
                                                       "ids": [waiting]})).json()
    assert retried["done"] == [] and "only failed or completed jobs" in retried["refused"][waiting]
    for body, message in (
            ({"action": "retry", "ids": "1,2"}, "ids must be a list of job ids"),
            ({"action": "retry", "ids": []}, "no jobs selected"),
            ({"action": "retry", "ids": [str(n) for n in range(actions.BULK_LIMIT + 1)]},
             f"at most {actions.BULK_LIMIT} at once"),
            ({"action": "promote", "ids": [waiting]}, "expected retry or remove")):
        response = await http.post("/api/jobs/bulk", json=body)
        assert response.status_code == 400 and message in response.json()["error"], body


async def test_the_form_asks_first_then_acts(http: httpx.AsyncClient, worker: Proc) -> None:
    failed = await _failed(http, 2)
    token = await csrf_token(http, "/jobs/failed")
    form = {"csrf_token": token, "action": "retry", "ids": failed, "next": "/jobs/failed"}
    asked = await http.post("/jobs/bulk", data=form)
    assert asked.status_code == 200 and "Retry 2 jobs?" in asked.text
    assert re.findall(r'name="ids" value="([^"]+)"', asked.text) == failed
    assert (await http.get(f"/api/jobs/{failed[0]}")).json()["state"] == "failed"  # not yet

    done = await http.post("/jobs/bulk", data={**form, "confirmed": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/jobs/failed"
    assert "2 job(s) queued for retry." in (await http.get("/jobs/failed")).text
    for job_id in failed:
        await wait_for_state(http, job_id, "completed")

    nothing = await http.post("/jobs/bulk", data={"csrf_token": token, "action": "remove",
                                                  "next": "/jobs/completed"})
    assert nothing.status_code == 303
    assert "no jobs selected" in (await http.get("/jobs/completed")).text
    forged = await http.post("/jobs/bulk", data={**form, "csrf_token": "forged",
                                                 "confirmed": "yes"})
    assert forged.status_code == 403
