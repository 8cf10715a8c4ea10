"""A Redis ACL user limited to the queue's keys and channel: the line docs/deployment.md gives,
run verbatim on a redis-server of the test's own; a worker, the CLI, the client, `bullpen web`
and doctor work as that user, Redis refuses them nothing but the optional commands; and doctor
names each permission taken away."""

from __future__ import annotations

import re
import shlex
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bullpen import SyncClient, doctor
from tests.helpers import REPO
from tests.helpers.processes import Proc, run_cli
from tests.helpers.redis_server import PrivateRedis, private_redis
from tests.helpers.web import running_web

pytestmark = pytest.mark.topology

QUEUE = "dojo-slims"  # the documented line names the default queue
TOKEN = "acl-test-token-Vb7Qm2Lx9Rk4Tz8Wp3Nc6Hy5Jd1Gs0Fa"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
DIRTY = ("Traceback", "Worker error", "Missing lock", "Task exception was never retrieved",
         "NOPERM")
# Refused on purpose: bullpen does without them (docs/deployment.md says what they add).
OPTIONAL = {"client|list", "config|get"}


def documented_acl_line() -> str:
    """The ACL SETUSER line of docs/deployment.md's "Redis ACL users" section."""
    text = (REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    section = text.split("## Redis ACL users", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("ACL SETUSER ")]
    assert len(lines) == 1, lines
    return lines[0]


def password_of(line: str) -> str:
    return next(part[1:] for part in shlex.split(line) if part.startswith(">"))


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateRedis]:
    with private_redis(persistent=True) as started:
        yield started


@pytest.fixture
def acl_env(server: PrivateRedis, offline_app_env: dict[str, str],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The sample app on the default queue, as the documented user (created afresh)."""
    line = documented_acl_line()
    server.client.execute_command(*shlex.split(line))  # type: ignore[no-untyped-call]
    server.client.acl_log_reset()
    values = {"WORKER_REDIS_URL": f"redis://bullpen:{password_of(line)}@127.0.0.1:"
                                  f"{server.port}/0",
              "WORKER_DEFAULT_QUEUE": QUEUE, "WEB_AUTH_TOKEN": TOKEN}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    Path(offline_app_env["EXPORT_DIR"]).mkdir()
    yield {**offline_app_env, **values}
    server.client.flushall()


def refused(server: PrivateRedis) -> set[str]:
    """What Redis's ACL LOG says it refused (commands, keys, channels)."""
    return {str(entry["object"]) for entry in server.client.acl_log(128)}


def test_the_documented_user_runs_worker_cli_client_web_and_doctor(
        server: PrivateRedis, acl_env: dict[str, str]) -> None:
    worker = Proc(["worker"], acl_env)
    try:
        worker.wait_for("Worker started and ready")
        worker.wait_for("Schedules reconciled")
        enqueued = run_cli(["enqueue", "test.record", "--data", '{"n": 1}'], acl_env)
        assert enqueued.returncode == 0, enqueued.stderr
        client = SyncClient()
        try:
            assert client.job(enqueued.stdout.strip()).wait(timeout=15) == {"echo": {"n": 1}}
            export = client.exports.create([{"id": 1}], filename="rows.csv")
            assert export.size_bytes > 0
            slow = client.enqueue("test.slow", {"sleep_s": 30})
            worker.wait_for(f"Processing job {slow.id} of type test.slow")
            assert client.cancel(slow.id)  # published on the queue's cancel channel
            with pytest.raises(Exception, match="cancel"):
                slow.wait(timeout=15)
        finally:
            client.close()
        listed = run_cli(["jobs", "--state", "completed"], acl_env)
        assert listed.returncode == 0 and enqueued.stdout.strip() in listed.stdout
        with running_web(acl_env) as (_web, base):
            ready = httpx.get(f"{base}/readyz", headers=ADMIN, timeout=10)
            assert ready.status_code == 200, ready.text
            for page in ("/", "/schedules", "/workers", "/exports", "/metrics", "/api/jobs"):
                answer = httpx.get(base + page, headers=ADMIN, timeout=10)
                assert answer.status_code == 200, (page, answer.text[:300])
        checked = run_cli(["doctor"], acl_env)
        problems = [line for line in checked.stdout.splitlines() if line.startswith(("✗", "!"))]
        # The one problem is the job cancelled above.
        assert problems == [f"✗ failed jobs: 1 in the last hour; latest: test.slow #{slow.id}: "
                            "cancelled"], checked.stdout
        assert re.search(r"✓ permissions: user 'bullpen' may run the \d+ commands",
                         checked.stdout), checked.stdout
    finally:
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0, worker.output
    assert not [line for line in worker.lines if any(text in line for text in DIRTY)], \
        worker.output
    assert refused(server) <= OPTIONAL


@pytest.mark.parametrize(("taken", "named", "grant"), [
    ("-zadd", "may not run zadd", "+zadd"),
    ("-evalsha", "may not run evalsha", "+evalsha"),
    ("-info", "may not run info", "+info"),
    ("resetchannels", f"may not use its cancel channel bull:{QUEUE}:bullpen:cancel",
     f"&bull:{QUEUE}:bullpen:cancel"),
    (f"resetkeys ~bull:{QUEUE}:bullpen:*", f"may not read and write the queue's keys "
     f"bull:{QUEUE}:*", f"~bull:{QUEUE}:*"),
    ("-eval", "may not run EVAL", "+@scripting"),
])
def test_doctor_names_the_permission_taken_away(server: PrivateRedis, acl_env: dict[str, str],
                                                taken: str, named: str, grant: str) -> None:
    server.client.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "bullpen", *taken.split())
    checks = {check.name: check for check in doctor.run_checks()}
    finding = checks["permissions"]
    assert finding.status == "fail" and "user 'bullpen' " + named in finding.message, finding
    assert finding.fix is not None and f"ACL SETUSER bullpen {grant} " in finding.fix
    assert checks["workers"].status == "skip"  # not a crash on the refusals that would follow
