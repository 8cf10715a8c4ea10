"""Finding jobs through the API and the pages: by id in any state, by task, by text in data or a
failure reason, newest or oldest first, with totals, and a note when the scan stopped short."""

from __future__ import annotations

import httpx
import pytest

from bullpen.web import search
from tests.helpers.processes import Proc
from tests.helpers.web import wait_for_state


async def _enqueue(http: httpx.AsyncClient, task: str, data: object, **extra: object) -> str:
    response = await http.post("/api/jobs", json={"task": task, "data": data, **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _ids(http: httpx.AsyncClient, query: str) -> list[str]:
    response = await http.get(f"/api/jobs?{query}")
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["jobs"]]


async def test_text_task_and_id_in_one_state(http: httpx.AsyncClient) -> None:
    plain = [await _enqueue(http, "test.record", {"city": city})
             for city in ("Lyon", "Zürich", "Oslo", "lyonnais")]
    slow = await _enqueue(http, "test.slow", {"city": "Lyon"})
    found = (await http.get("/api/jobs?state=waiting&q=LYON")).json()
    assert [job["id"] for job in found["jobs"]] == [plain[0], plain[3], slow]
    assert (found["total"], found["scanned"], found["in_state"]) == (3, 5, 5)
    assert found["cut_short"] is False and found["exact"] is None
    # Python producers store non-ASCII escaped (\u00fc); a person types the letter.
    assert await _ids(http, "state=waiting&q=z%C3%BCrich") == [plain[1]]
    assert await _ids(http, "state=waiting&q=lyon&task=test.slow") == [slow]
    assert await _ids(http, "state=waiting&q=test.slo") == [slow]  # the task name matches too
    by_id = (await http.get(f"/api/jobs?state=failed&q={plain[2]}")).json()
    assert by_id["exact"]["id"] == plain[2] and by_id["exact"]["state"] == "waiting"
    assert by_id["jobs"] == []
    page = (await http.get("/jobs/waiting?q=lyon")).text
    assert "1\u20133 of 3" in page and "matching" in page and 'id="scan-note"' not in page


async def test_failure_reasons_are_searched(http: httpx.AsyncClient, worker: Proc) -> None:
    flaky = await _enqueue(http, "test.flaky", {"succeed_on": 2})
    give_up = await _enqueue(http, "test.give_up", {})
    for job_id in (flaky, give_up):
        await wait_for_state(http, job_id, "failed")
    assert await _ids(http, "state=failed&q=will%20not%20retry") == [give_up]
    assert await _ids(http, "state=failed&q=FLAKY%20FAILURE") == [flaky]


async def test_order_pages_and_totals(http: httpx.AsyncClient) -> None:
    ids = [await _enqueue(http, "test.record", {"n": n}) for n in range(5)]
    delayed = [await _enqueue(http, "test.record", {"n": n}, delay_ms=60_000 + n * 1000)
               for n in range(3)]
    # Waiting jobs run oldest first, so they are listed so; the order can be turned round.
    assert await _ids(http, "state=waiting") == ids
    assert await _ids(http, "state=waiting&sort=newest") == ids[::-1]
    assert await _ids(http, "state=delayed") == delayed[::-1]
    assert await _ids(http, "state=delayed&sort=oldest") == delayed
    second = (await http.get("/api/jobs?state=waiting&size=2&page=2&sort=newest")).json()
    assert [job["id"] for job in second["jobs"]] == ids[2:0:-1]
    assert (second["total"], second["pages"], second["has_next"]) == (5, 3, True)
    filtered = (await http.get("/api/jobs?state=waiting&task=test.record&size=2&page=3")).json()
    assert [job["id"] for job in filtered["jobs"]] == ids[4:]
    assert (filtered["total"], filtered["has_next"]) == (5, False)
    page = (await http.get("/jobs/waiting?task=test.record&sort=newest")).text
    info = " ".join(page.split('id="page-info">')[1].split("</span>")[0].split())
    assert info == "1\u20135 of 5 matching · page 1 of 1"
    assert (await http.get("/api/jobs?state=waiting&sort=sideways")).status_code == 400
    assert (await http.get("/jobs/waiting?sort=sideways")).status_code == 400


async def test_a_scan_stopped_short_says_so(http: httpx.AsyncClient,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "SCAN_LIMIT", 4)
    monkeypatch.setattr(search, "CHUNK", 3)
    ids = [await _enqueue(http, "test.record", {"word": "needle" if n % 2 else "hay"})
           for n in range(7)]
    found = (await http.get("/api/jobs?state=waiting&q=needle&sort=newest")).json()
    assert [job["id"] for job in found["jobs"]] == [ids[5], ids[3]]
    assert (found["scanned"], found["in_state"], found["cut_short"]) == (4, 7, True)
    page = (await http.get("/jobs/waiting?q=needle&sort=newest")).text
    assert 'id="scan-note"' in page and "Looked at the newest 4 of 7 waiting jobs" in page
