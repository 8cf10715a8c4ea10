"""examples/fastapi_app through FastAPI's own TestClient, next to a real worker and Redis."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from tests.helpers.processes import Proc

PASSWORD = "staff-password-for-tests"


def test_enqueue_follow_export_download_and_the_mounted_dashboard(
        example_env: Callable[[str, dict[str, str]], dict[str, str]],
        worker_for: Callable[[dict[str, str]], Proc]) -> None:
    values = example_env("fastapi_app", {"APP_STAFF_PASSWORD": PASSWORD,
                                         "APP_SESSION_SECRET": "session-secret-for-tests"})
    worker = worker_for(values)
    from fastapi.testclient import TestClient  # noqa: PLC0415 - an example dependency only
    from fastapi_app import main  # noqa: PLC0415 - importable once the environment is set

    with TestClient(main.build_app()) as http:
        started = http.post("/reports", params={"month": "2026-11"})
        assert started.status_code == 202
        job_id = started.json()["job_id"]
        status: dict[str, Any] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status = http.get(f"/reports/{job_id}").json()
            if status["state"] == "completed":
                break
            time.sleep(0.05)
        assert status == {"state": "completed", "error": None,
                          "result": {"month": "2026-11", "orders": 3, "revenue": 120}}

        exported = http.post("/exports/orders", params={"min_total": 40}).json()
        assert exported["rows"] == 2
        assert exported["url"].startswith("http://testserver/admin/jobs/exports/")
        download = http.get(exported["url"])
        assert download.status_code == 200
        assert download.text == "id,customer,total\r\n2,Grace,50\r\n3,Linus,40\r\n"

        # The dashboard behind the app's own sign-in, every link under the mount point.
        refused = http.get("/admin/jobs/", follow_redirects=False)
        assert (refused.status_code, refused.headers["location"]) == (
            303, "/login?next=/admin/jobs/")
        signed_in = http.post("/login", data={"password": PASSWORD, "next": "/admin/jobs/"})
        assert signed_in.status_code == 200 and "bullpen" in signed_in.text
        links = re.findall(r'(?:href|action)="([^"]+)"', signed_in.text)
        assert links and all(link.startswith("/admin/jobs/") for link in links), links
        job_page = http.get(f"/admin/jobs/job/{job_id}")
        assert job_page.status_code == 200 and "reports.build" in job_page.text
    assert "Traceback" not in worker.output, worker.output
