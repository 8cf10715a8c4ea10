"""examples/django_app through Django's own test client, next to a real worker and Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.helpers import REPO
from tests.helpers.processes import Proc


def test_orders_are_confirmed_after_commit_and_downloads_are_served_by_the_view(
        example_env: Callable[[str, dict[str, str]], dict[str, str]],
        worker_for: Callable[[dict[str, str]], Proc], tmp_path: Path,
        monkeypatch: Any) -> None:
    values = example_env("django_app", {"DJANGO_SETTINGS_MODULE": "django_app.settings",
                                        "DJANGO_APP_DB": str(tmp_path / "app.sqlite3")})
    project = REPO / "examples" / "django_app"
    values["PYTHONPATH"] = f"{project}:{values['PYTHONPATH']}"
    monkeypatch.setenv("PYTHONPATH", values["PYTHONPATH"])
    monkeypatch.syspath_prepend(str(project))
    # Django and the test client are example dependencies only.
    import django  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415
    from django.test import Client as DjangoClient  # noqa: PLC0415

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    http = DjangoClient()

    refused = http.post("/orders/", {"customer": "Eve", "total": -5},
                        content_type="application/json")
    assert refused.status_code == 400
    queue = redis.Redis.from_url(values["WORKER_REDIS_URL"])
    assert queue.keys(f"bull:{values['WORKER_DEFAULT_QUEUE']}:*") == []  # rolled back: no job
    queue.close()

    worker = worker_for(values)
    placed = http.post("/orders/", {"customer": "Ada", "total": 30},
                       content_type="application/json").json()
    shown: dict[str, Any] = {}
    deadline = time.monotonic() + 15
    while shown.get("job_state") != "completed":
        assert time.monotonic() < deadline, f"the worker never confirmed the order: {shown}"
        time.sleep(0.05)
        shown = http.get(f"/orders/{placed['order_id']}/", {"job": placed["job_id"]}).json()
    assert shown["status"] == "confirmed"
    assert shown["job_result"] == {"order_id": placed["order_id"], "total": 30}

    url = http.post("/exports/orders/").json()["url"]
    assert url.startswith("http://testserver/files/exports/")
    download = http.get(url.removeprefix("http://testserver"))
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    body = b"".join(download.streaming_content)
    assert body == f"id,customer,total\r\n{placed['order_id']},Ada,30\r\n".encode()
    assert http.get("/files/exports/forged-token").status_code == 404
    from django_app.jobs import jobs  # noqa: PLC0415 - the project's process-wide client

    jobs.close()
    assert "Traceback" not in worker.output, worker.output
