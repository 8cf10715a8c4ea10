"""Exports across hosts: workers publish their export directory's identity; `bullpen doctor` and
`bullpen web`'s /readyz name the workers whose directory they do not see, and stay quiet when
all share it (or when a worker publishes none, as an older bullpen does)."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
import redis

from bullpen import doctor
from bullpen.exports.identity import ensure_identity
from tests.helpers.processes import Proc, eventually, run_cli
from tests.helpers.web import running_web

TOKEN = "exports-test-token-Qw8Er5Ty2Ui9Op4As7Df1Gh6Jk3Lz0Xc"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _readyz(base: str) -> dict[str, object]:
    check: dict[str, object] = httpx.get(f"{base}/readyz", headers=ADMIN,
                                         timeout=10).json()["checks"]["export_dir"]
    return check


def _doctor_line(env: dict[str, str]) -> str:
    output = run_cli(["doctor"], env).stdout
    return next(line for line in output.splitlines() if "shared exports:" in line)


def _old_worker_heartbeat(env: dict[str, str]) -> None:
    """A live heartbeat as a bullpen without the marker writes it: no export fields."""
    queue = env["WORKER_DEFAULT_QUEUE"]
    record = {"id": "old-1", "host": "old-host", "pid": 1, "version": "0.9", "concurrency": 1,
              "started_at": time.time(), "last_seen": time.time(), "active_jobs": []}
    connection = redis.Redis.from_url(env["WORKER_REDIS_URL"])
    try:
        connection.set(f"bull:{queue}:bullpen:worker:old-1", json.dumps(record), px=60_000)
        connection.zadd(f"bull:{queue}:bullpen:workers", {"old-1": time.time()})
    finally:
        connection.close()


def test_a_worker_on_another_export_directory_is_named(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    shared, own = tmp_path / "shared", tmp_path / "elsewhere"
    shared.mkdir()
    own.mkdir()
    base_env = {**env, "WEB_AUTH_TOKEN": TOKEN, "EXPORT_DIR": str(shared)}
    _old_worker_heartbeat(env)
    workers = [Proc(["worker"], base_env), Proc(["worker"], {**base_env, "EXPORT_DIR": str(own)})]
    try:
        for worker in workers:
            worker.wait_for("Worker started and ready")
        stray = f"{socket.gethostname()}/{workers[1].popen.pid}"
        with running_web(base_env) as (_web, base):
            eventually(lambda: not _readyz(base)["ok"], timeout=10)
            reason = str(_readyz(base)["reason"])
            assert f"1 worker(s) write exports to a directory this web does not see (worker " \
                   f"{stray};" in reason, reason
            assert "docs/deployment.md#one-export-directory-for-every-host" in reason
            assert str(workers[0].popen.pid) not in reason
            line = _doctor_line(base_env)
            assert line.startswith("✗") and stray in line and str(own) in line, line

            workers[1].signal(signal.SIGTERM)  # it leaves; one on the shared directory comes
            assert workers[1].wait() == 0
            workers.append(Proc(["worker"], base_env))
            workers[2].wait_for("Worker started and ready")
            eventually(lambda: bool(_readyz(base)["ok"]), timeout=10)
            assert _readyz(base)["reason"] == ("the live workers write exports to this web's "
                                               "export directory")
            line = _doctor_line(base_env)
            assert line == (f"✓ shared exports: the 2 live worker(s) write exports to {shared}, "
                            "the directory this host sees"), line
    finally:
        for worker in workers:
            worker.kill()


@pytest.mark.parametrize("doctor_dir", ["missing", "other"])
def test_doctor_on_a_host_without_the_workers_directory(
        env: dict[str, str], tmp_path: Path, doctor_dir: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (tmp_path / "other").mkdir()
    ensure_identity(tmp_path / "other")  # a directory some other worker once used
    worker = Proc(["worker"], {**env, "EXPORT_DIR": str(shared)})
    try:
        worker.wait_for("Worker started and ready")
        monkeypatch.setenv("EXPORT_DIR", str(tmp_path / doctor_dir))  # doctor runs here
        said = "has no export directory marker" if doctor_dir == "missing" else \
            "sees another directory"

        def reported() -> bool:
            found = {check.name: check for check in doctor.run_checks()}["shared exports"]
            return found.status == "fail" and said in found.message

        eventually(reported, timeout=10, interval=0.5)
    finally:
        worker.kill()
