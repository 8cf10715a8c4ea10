"""examples/flask_app through Flask's own test client, next to a real worker and Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.helpers.processes import Proc


def test_orders_are_confirmed_after_commit_and_exports_download(
        example_env: Callable[[str, dict[str, str]], dict[str, str]],
        worker_for: Callable[[dict[str, str]], Proc], tmp_path: Path) -> None:
    values = example_env("flask_app", {"FLASK_APP_DB_URL": f"sqlite:///{tmp_path}/app.sqlite3"})
    from flask_app.app import create_app  # noqa: PLC0415 - importable once the environment is set
    from flask_app.jobs import jobs  # noqa: PLC0415 - importable once the environment is set

    http = create_app().test_client()
    # A rolled-back order enqueues nothing.
    refused = http.post("/orders", json={"customer": "Eve", "total": -5})
    assert refused.status_code == 400
    queue = redis.Redis.from_url(values["WORKER_REDIS_URL"])
    assert queue.keys(f"bull:{values['WORKER_DEFAULT_QUEUE']}:*") == []
    queue.close()

    worker = worker_for(values)
    placed = http.post("/orders", json={"customer": "Ada", "total": 30})
    assert placed.status_code == 201
    order_id = placed.get_json()["order_id"]
    deadline = time.monotonic() + 15
    while http.get(f"/orders/{order_id}").get_json()["status"] != "confirmed":
        assert time.monotonic() < deadline, "the worker never confirmed the order"
        time.sleep(0.05)

    url = http.post("/exports/orders").get_json()["url"]
    assert url.startswith("http://localhost/files/exports/")
    download = http.get(url.removeprefix("http://localhost"))
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith('attachment; filename="orders.csv"')
    assert download.data == f"id,customer,total\r\n{order_id},Ada,30\r\n".encode()
    partial = http.get(url.removeprefix("http://localhost"), headers={"Range": "bytes=0-1"})
    assert (partial.status_code, partial.data) == (206, b"id")
    assert http.get("/files/exports/forged-token").status_code == 404
    jobs.close()
    assert "Traceback" not in worker.output, worker.output
