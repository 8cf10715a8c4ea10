"""The dashboard an operator looks at, in headless Chromium against a real worker and `bullpen
web`: charts after a burst of jobs, search, a bulk retry, live refresh without a reload, and a
screenshot of every page at desktop and phone widths (test-artifacts/dashboard-*.png)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.helpers import ARTIFACTS
from tests.helpers.processes import eventually, start_worker
from tests.helpers.web import running_web
from tests.web.test_web_browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.test_web_hardening import TOKEN as WEB_TOKEN

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                       reason=f"{CHROMIUM} is absent: install Debian's chromium "
                              "(.ci/install-browser) to run the browser tests"),
]

WIDTHS: dict[str, ViewportSize] = {"desktop": {"width": 1280, "height": 900},
                                   "phone": {"width": 390, "height": 844}}
BURST = 24
SCHEDULE = [{"name": "tick-every-second", "task_name": "test.record", "every_ms": 1000}]


@pytest.fixture
def dashboard(web_env: dict[str, str]) -> Iterator[str]:
    """A worker (with a one-second schedule) and an unauthenticated `bullpen web`."""
    env = {**web_env, "SAMPLE_SCHEDULES": json.dumps(SCHEDULE)}
    worker = start_worker(env)
    try:
        with running_web({**env, "WEB_ALLOW_NO_AUTH": "true"}) as (web, base):
            yield base
            assert "Traceback" not in web.output, web.output
        assert "Traceback" not in worker.output, worker.output
    finally:
        worker.kill()


def _enqueue(base: str, task: str, data: dict[str, Any]) -> str:
    response = httpx.post(f"{base}/api/jobs", json={"task": task, "data": data})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _job(base: str, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{base}/api/jobs/{job_id}").json()
    return found


def _finished(base: str, ids: list[str], state: str) -> bool:
    return all(_job(base, job_id).get("state") == state for job_id in ids)


def _burst(base: str) -> tuple[list[str], list[str], str]:
    """BURST completed jobs (one with a unique word in its data) and 3 failed ones."""
    done = [_enqueue(base, "test.record", {"n": n, "note": f"burst item {n}"})
            for n in range(BURST - 1)]
    needle = _enqueue(base, "test.record", {"note": "the parcel for Zanzibar-7Q"})
    failed = [_enqueue(base, "test.flaky", {"succeed_on": 2, "n": n}) for n in range(3)]
    eventually(lambda: _finished(base, [*done, needle], "completed"), timeout=30)
    eventually(lambda: _finished(base, failed, "failed"), timeout=30)
    return [*done, needle], failed, needle


def _minutes(base: str, ids: list[str]) -> set[int]:
    return {_job(base, job_id)["finished_on_ms"] // 60_000 for job_id in ids}


def _shoot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_charts_search_bulk_retry_live_and_every_page(dashboard: str,
                                                      web_env: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only browser tests need playwright

    done, failed, needle = _burst(dashboard)
    finished_minutes = _minutes(dashboard, [*done, *failed])
    # The worker flushes its history with each heartbeat (0.5 s here).
    eventually(lambda: sum(point or 0 for point in httpx.get(f"{dashboard}/api/history").json()
                           ["charts"][0]["lines"][0]["values"]) >= BURST, timeout=15)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=WIDTHS["desktop"])
            violations: list[str] = []
            page.on("console", lambda message: violations.append(message.text)
                    if "Content Security Policy" in message.text else None)
            page.goto(dashboard + "/")
            _check_charts(page, finished_minutes, len(failed))
            _check_search(page, dashboard, needle)
            _check_bulk_retry(page, dashboard, failed)
            _check_live_refresh(page, dashboard)
            _check_strips(page, dashboard)
            assert violations == []
            for width, viewport in WIDTHS.items():
                _every_page(browser.new_page(viewport=viewport), dashboard, width, failed[2],
                            needle)
            with running_web({**web_env, "WEB_AUTH_TOKEN": WEB_TOKEN}) as (_, signed):
                for width, viewport in WIDTHS.items():
                    login = browser.new_page(viewport=viewport)
                    login.goto(signed + "/")  # redirected to the sign-in page
                    login.wait_for_selector("input[name=token]")
                    _shoot(login, f"login-{width}")
                    login.close()
        finally:
            browser.close()


def _check_charts(page: Any, minutes: set[int], failures: int) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 - only browser tests need playwright

    completed = page.locator('#chart-finished .pt[data-series="completed"]')
    expect(completed).to_have_count(60)  # one point per minute of the last hour
    values = [float(value) for value in completed.evaluate_all(
        "points => points.map(p => p.dataset.value)")]
    # The schedule's ticks complete too; the burst is all there.
    assert sum(values) >= BURST, values
    failed = page.locator('#chart-finished .pt[data-series="failed"]')
    assert sum(float(value) for value in failed.evaluate_all(
        "points => points.map(p => p.dataset.value)")) == failures
    for series in ("run-p50", "run-p95"):
        points = page.locator(f'#chart-run .pt[data-series="{series}"]')
        # A point for each minute in which a job finished (schedule ticks may add later ones).
        assert points.count() >= len(minutes), series
    assert page.locator("#chart-run > title").text_content() == "Run time"
    # Hovering a minute shows its numbers: the column's title names every series' value.
    last_minute = page.locator("#chart-finished .col title").last.text_content()
    assert "completed" in last_minute and "failed" in last_minute, last_minute
    page.click("#chart-finished-numbers summary")
    expect(page.locator("#chart-finished-numbers table")).to_be_visible()


def _check_search(page: Any, base: str, needle: str) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 - only browser tests need playwright

    page.goto(base + "/jobs/completed")
    page.fill("#q", "zanzibar-7q")
    page.click("#search button")
    rows = page.locator("#jobs tbody tr[data-job-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", needle)
    expect(page.locator("#page-info")).to_contain_text("1\u20131 of 1 matching")


def _check_bulk_retry(page: Any, base: str, failed: list[str]) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 - only browser tests need playwright

    page.goto(base + "/jobs/failed")
    for job_id in failed[:2]:
        page.check(f'#jobs tr[data-job-id="{job_id}"] input[name=ids]')
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    page.click("button:has-text('Retry selected')")
    expect(page.locator("h1")).to_have_text("Retry 2 jobs?")
    expect(page.locator("#confirm-jobs tbody tr")).to_have_count(2)
    page.click("#confirm")
    expect(page.locator(".flash")).to_contain_text("2 job(s) queued for retry.")
    eventually(lambda: _finished(base, failed[:2], "completed"), timeout=20)
    assert _job(base, failed[2])["state"] == "failed"


def _check_live_refresh(page: Any, base: str) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 - only browser tests need playwright

    page.goto(base + "/jobs/failed")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#jobs tbody tr[data-job-id]")).to_have_count(1)
    extra = _enqueue(base, "test.flaky", {"succeed_on": 2, "live": True})
    # The list shows the new failure within a few refresh periods, without reloading the page.
    expect(page.locator(f'#jobs tr[data-job-id="{extra}"]')).to_have_count(1, timeout=20_000)
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.locator("#live")).to_contain_text("live")
    # Ticking a job pauses the refresh until it is unticked.
    page.check(f'#jobs tr[data-job-id="{extra}"] input[name=ids]')
    expect(page.locator("#live")).to_contain_text("paused", timeout=10_000)
    page.uncheck(f'#jobs tr[data-job-id="{extra}"] input[name=ids]')


def _check_strips(page: Any, base: str) -> None:
    """Workers: each one's jobs per minute; schedules: a lateness bar per recent run."""
    from playwright.sync_api import expect  # noqa: PLC0415 - only browser tests need playwright

    page.goto(base + "/workers")
    bars = page.locator("#workers .strip .bar")
    expect(bars).to_have_count(60)
    per_minute = bars.evaluate_all("bars => bars.map(b => Number(b.dataset.value))")
    assert sum(per_minute) >= BURST + 3, per_minute
    page.goto(base + "/schedules")
    runs = page.locator('tr[data-schedule="tick-every-second"] .strip .run')
    assert runs.count() >= 1
    assert "late" in (runs.first.locator("title").text_content() or "")


def _every_page(page: Any, base: str, width: str, failed_id: str, needle: str) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415 - only browser tests need playwright

    shots = {
        "overview": "/", "overview-24h": "/?range=24h", "overview-task": "/?task=test.record",
        "jobs-completed": "/jobs/completed", "jobs-failed": "/jobs/failed",
        "search": "/jobs/completed?q=burst+item", "job-failed": f"/job/{failed_id}",
        "job-completed": f"/job/{needle}", "schedules": "/schedules", "workers": "/workers",
        "exports": "/exports", "enqueue": "/enqueue", "not-found": "/job/no-such-job",
    }
    for name, path in shots.items():
        page.goto(base + path)
        expect(page.locator("h1")).to_be_visible()
        _shoot(page, f"{name}-{width}")
    page.goto(base + "/jobs/completed")
    page.locator("#jobs input[name=ids]").first.check()
    page.click("button:has-text('Remove selected')")
    expect(page.locator("h1")).to_contain_text("Remove 1 job?")
    _shoot(page, f"confirm-{width}")
    page.close()
