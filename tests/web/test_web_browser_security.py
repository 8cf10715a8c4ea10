"""The dashboard in headless Chromium under attack. DNS rebinding: a page on attacker.test, whose
name now resolves to 127.0.0.1, scripts the dashboard as its own origin (the audit's script read
download tokens from job results, minted a link, downloaded an export and enqueued a job); the
Host check refuses all of it, while the same script from the dashboard's own origin still works.
And the content security policy leaves the dashboard itself working."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers.processes import eventually, start_worker
from tests.helpers.web import running_web
from tests.web.test_web_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                       reason=f"{CHROMIUM} is absent: install Debian's chromium "
                              "(.ci/install-browser) to run the browser tests"),
]

REBINDING_ARGS = [
    # attacker.test and evil.test now resolve to this machine, as after a rebinding.
    "--host-resolver-rules=MAP attacker.test 127.0.0.1, MAP evil.test 127.0.0.1",
    # Chromium's own Local/Private Network Access checks would also stop a public page from
    # reaching 127.0.0.1; Firefox and Safari have none, so bullpen must not rely on them.
    "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
    "PrivateNetworkAccessRespectPreflightResults,PrivateNetworkAccessSendPreflights",
]
# What the audit's page ran: read results, mint a link, download, enqueue, pause.
ATTACK = """async () => {
  const out = {};
  const jobs = await fetch('/api/jobs?state=completed');
  out.list = jobs.status;
  const text = await jobs.text();
  const tokens = [...text.matchAll(/"token": ?"([^"]+)"/g)].map(m => m[1]);
  out.tokens = tokens.length;
  const ids = [...text.matchAll(/"export_id": ?"([^"]+)"/g)].map(m => m[1]);
  if (ids.length) {
    const link = await fetch('/api/exports/' + ids[0] + '/link', {method: 'POST',
      headers: {'Content-Type': 'application/json'}, body: '{}'});
    out.link = link.status;
  }
  if (tokens.length) out.download = (await fetch('/exports/' + tokens[0])).status;
  const job = await fetch('/api/jobs', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: '{"task": "health.check"}'});
  out.enqueue = job.status;
  out.pause = (await fetch('/api/queue/pause', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: '{}'})).status;
  return out;
}"""
# A page on another origin posts across origins, as a CSRF page would: never allowed through.
CROSS_POST = """async (target) => {
  await fetch(target + '/api/queue/pause', {method: 'POST', mode: 'no-cors', body: '{}'});
  const form = document.createElement('form');
  form.method = 'POST'; form.action = target + '/queue/pause';
  document.body.appendChild(form);
  form.submit();
  return true;
}"""


@pytest.fixture
def dashboard(web_env: dict[str, str]) -> Iterator[str]:
    """An unauthenticated dashboard (the opt-out), a worker, and one finished export job."""
    worker = start_worker(web_env)
    try:
        with running_web({**web_env, "WEB_ALLOW_NO_AUTH": "true"}) as (web, base):
            job = httpx.post(f"{base}/api/jobs", json={
                "task": "exports.create", "data": {"exporter": "jobs.history"}}).json()["id"]
            eventually(lambda: httpx.get(f"{base}/api/jobs/{job}").json()["state"]
                       == "completed", timeout=20)
            yield base
            assert "Traceback" not in web.output, web.output
    finally:
        worker.kill()


def _run(base: str, page_url: str, script: str, argument: Any = None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only browser tests need playwright

    port = base.rsplit(":", 1)[1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=[*CHROMIUM_ARGS, *REBINDING_ARGS])
        try:
            page = browser.new_page()
            # The attacker's own page: served by the attacker (here by the test) first, then
            # its name points at 127.0.0.1 and its scripts reach the dashboard's port.
            page.route("**/evil.html", lambda route: route.fulfill(
                body="<!doctype html><title>cats</title>", content_type="text/html"))
            page.goto(page_url.replace("PORT", port))
            result: dict[str, Any] = page.evaluate(script, argument)
            page.wait_for_timeout(300)  # let the form submission land, if it goes anywhere
            return result
        finally:
            browser.close()


def _paused(base: str) -> bool:
    return bool(httpx.get(f"{base}/api/overview").json()["paused"])


def test_a_rebound_name_gets_nothing(dashboard: str) -> None:
    before = httpx.get(f"{dashboard}/api/overview").json()["counts"]
    stolen = _run(dashboard, "http://attacker.test:PORT/evil.html", ATTACK)
    assert stolen == {"list": 400, "tokens": 0, "enqueue": 400, "pause": 400}, stolen
    assert httpx.get(f"{dashboard}/api/overview").json()["counts"] == before
    assert not _paused(dashboard)
    # The same script on the dashboard's own origin works: the refusal is the Host check.
    own = _run(dashboard, "http://127.0.0.1:PORT/evil.html", ATTACK)
    assert own["list"] == 200 and own["tokens"] >= 1, own
    assert own["link"] == 200 and own["download"] == 200, own
    assert own["enqueue"] == 201 and own["pause"] == 200


def test_another_origin_cannot_post(dashboard: str) -> None:
    _run(dashboard, "http://evil.test:PORT/evil.html", CROSS_POST, dashboard)
    assert not _paused(dashboard)


def test_the_dashboard_works_under_its_content_security_policy(dashboard: str) -> None:
    """The CSP allows inline styles and the one hashed handler (the task filter), nothing more."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only browser tests need playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            violations: list[str] = []
            page.on("console", lambda message: violations.append(message.text)
                    if "Content Security Policy" in message.text else None)
            page.goto(f"{dashboard}/jobs/completed")
            page.select_option("select[name=task]", "exports.create")
            page.wait_for_url("**/jobs/completed?*task=exports.create*")
            assert page.locator("#jobs tbody tr").count() == 1
            assert violations == []
        finally:
            browser.close()
