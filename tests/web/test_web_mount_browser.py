"""Headless Chromium through the dashboard mounted at /admin/jobs of examples/fastapi_app, run
by uvicorn next to a real worker: sign in with the app's own login, then links, forms, CSRF,
redirects and a download link, all under the prefix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers import ARTIFACTS, REPO
from tests.helpers.processes import eventually, running_worker
from tests.helpers.redis_server import free_port
from tests.web.test_web_browser import CHROMIUM, CHROMIUM_ARGS

PREFIX = "/admin/jobs"
PASSWORD = "staff-password-for-browser-tests"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                       reason=f"{CHROMIUM} is absent: install Debian's chromium "
                              "(.ci/install-browser) to run the browser tests"),
]


def _post(url: str) -> dict[str, object]:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


@pytest.fixture
def host_app(env: dict[str, str]) -> Iterator[str]:
    """examples/fastapi_app under uvicorn on a free loopback port, with a worker beside it."""
    examples = str(REPO / "examples")
    values = {**env, "BULLPEN_APP": "fastapi_app", "APP_STAFF_PASSWORD": PASSWORD,
              "APP_SESSION_SECRET": "session-secret-for-browser-tests",
              "PYTHONPATH": os.pathsep.join(filter(None, [examples,
                                                          os.environ.get("PYTHONPATH")]))}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_worker(values):
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "fastapi_app.main:app", "--port", str(port),
             "--log-level", "warning"], cwd=examples, env={**os.environ, **values},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            def up() -> bool:
                try:
                    with urllib.request.urlopen(f"{base}{PREFIX}/healthz", timeout=1):
                        return True
                except OSError:
                    return False

            eventually(up, timeout=20, interval=0.1)
            yield base
        finally:
            server.terminate()
            output = server.communicate(timeout=10)[0]
            assert "Traceback" not in output, output


def test_click_through_the_mounted_dashboard(host_app: str) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415 - only browser tests need playwright

    job_id = str(_post(f"{host_app}/reports?month=2026-11")["job_id"])
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{host_app}{PREFIX}/")
            # The app's own sign-in, then back to the dashboard under the prefix.
            expect(page).to_have_url(f"{host_app}/login?next={PREFIX}/")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Sign in')")
            expect(page).to_have_url(f"{host_app}{PREFIX}/")
            expect(page.locator("#count-completed .n")).to_have_text("1", timeout=15_000)
            page.click("#count-completed")
            expect(page).to_have_url(f"{host_app}{PREFIX}/jobs/completed")
            page.locator(f'#jobs tr[data-job-id="{job_id}"] a').first.click()
            expect(page).to_have_url(f"{host_app}{PREFIX}/job/{job_id}")
            expect(page.locator("#job-state")).to_have_text("completed")
            page.click("button:has-text('Remove')")  # a form with its CSRF token
            expect(page.locator(".flash")).to_contain_text(f"Job {job_id} removed")
            expect(page).to_have_url(f"{host_app}{PREFIX}/")
            page.click("text=Enqueue a task…")
            expect(page).to_have_url(f"{host_app}{PREFIX}/enqueue")
            page.select_option("select[name=task]", "reports.build")
            page.fill("textarea[name=data]", '{"month": "2026-12"}')
            page.click("button:has-text('Enqueue')")
            expect(page.locator(".flash")).to_contain_text("Enqueued reports.build as job")
            assert page.url.startswith(f"{host_app}{PREFIX}/job/")
            expect(page.locator("#job-state")).to_have_text("completed", timeout=20_000)
            page.click("header >> text=Schedules")
            expect(page.locator('tr[data-schedule="cleanup-exports-hourly"]')
                   ).to_contain_text("registered")
            page.click("header >> text=Workers")
            expect(page.locator("#workers tbody tr")).to_have_count(1)
            link = _post(f"{host_app}/exports/orders")
            page.click("header >> text=Exports")
            expect(page).to_have_url(f"{host_app}{PREFIX}/exports")
            page.locator("button:has-text('Fresh link')").first.click()
            flash = page.locator(".flash")
            expect(flash).to_contain_text(f"{host_app}{PREFIX}/exports/")
            fresh = flash.inner_text().rsplit(": ", 1)[1].strip()
            for url in (str(link["url"]), fresh):
                download = page.request.get(url)
                assert download.status == 200 and download.text().startswith("id,customer")
            page.screenshot(path=str(ARTIFACTS / "dashboard-mounted-exports.png"),
                            full_page=True)
        finally:
            browser.close()
