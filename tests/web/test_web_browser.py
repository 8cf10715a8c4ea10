"""End to end in headless Chromium: find a failed job on the dashboard, retry it, see it done."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers import ARTIFACTS
from tests.helpers.processes import Proc, eventually, start_worker

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                       reason=f"{CHROMIUM} is absent: install Debian's chromium "
                              "(.ci/install-browser) to run the browser tests"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fetch(url: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


@pytest.fixture
def dashboard(web_env: dict[str, str]) -> Iterator[str]:
    """A real `bullpen web` on a free loopback port, next to a real worker."""
    port = _free_port()
    worker = start_worker(web_env)
    web = Proc(["web", "--port", str(port)], {**web_env, "WEB_ALLOW_NO_AUTH": "true"})
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return _fetch(f"{base}/healthz") == {"status": "ok"}
            except OSError:
                return False

        eventually(up, timeout=15, interval=0.1)
        yield base
    finally:
        web.kill()
        worker.kill()
        assert "Traceback" not in web.output, web.output


def test_retry_a_failed_job_from_the_dashboard(dashboard: str) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415 - only browser tests need playwright

    job_id = str(_fetch(f"{dashboard}/api/jobs",
                        {"task": "test.flaky", "data": {"succeed_on": 2}})["id"])
    eventually(lambda: _fetch(f"{dashboard}/api/jobs/{job_id}")["state"] == "failed")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(dashboard + "/")
            expect(page.locator("#count-failed .n")).to_have_text("1")
            page.click("#count-failed")
            row = page.locator(f'#jobs tr[data-job-id="{job_id}"]')
            expect(row).to_contain_text("flaky failure on attempt 1")
            row.locator("a").first.click()
            expect(page.locator("#job-state")).to_have_text("failed")
            expect(page.locator("#job-failure")).to_contain_text("flaky failure on attempt 1")
            page.click("button:has-text('Retry')")
            expect(page.locator(".flash")).to_contain_text(f"Job {job_id} queued for retry")
            # The job page reloads itself every few seconds until the job has finished.
            expect(page.locator("#job-state")).to_have_text("completed", timeout=20_000)
            expect(page.locator("#job-result")).to_contain_text('"ok"')
            page.screenshot(path=str(ARTIFACTS / "dashboard-retry-completed.png"),
                            full_page=True)
            page.goto(dashboard + "/")
            expect(page.locator("#count-completed .n")).to_have_text("1")
            page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)
            page.click("header >> text=Schedules")
            expect(page.locator('tr[data-schedule="cleanup-exports-hourly"]')
                   ).to_contain_text("registered")
            page.screenshot(path=str(ARTIFACTS / "dashboard-schedules.png"), full_page=True)
            page.click("header >> text=Workers")
            expect(page.locator("#workers tbody tr")).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "dashboard-workers.png"), full_page=True)
        finally:
            browser.close()
