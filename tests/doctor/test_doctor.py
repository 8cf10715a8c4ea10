"""`bullpen doctor` and `bullpen health`: one planted problem of each kind, and its fix."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bullpen.adapter import JobOptions, QueueClient
from bullpen.adapter.worker_names import queue_client_name
from tests.helpers import TEST_SECRET
from tests.helpers.exports import finished
from tests.helpers.processes import Proc, run_cli, start_worker
from tests.helpers.redis_server import PrivateRedis, free_port


def _doctor(env: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]], str]:
    """Exit code, checks by name (from --json), and the human output."""
    human = run_cli(["doctor"], env)
    machine = run_cli(["doctor", "--json"], env)
    assert human.returncode == machine.returncode, (human.stdout, machine.stdout)
    checks = {check["name"]: check for check in json.loads(machine.stdout)["checks"]}
    return human.returncode, checks, human.stdout


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, redis.Redis]]:
    """A redis-server of this test's own (never the shared one): evicting, not persisting."""
    server = PrivateRedis(tmp_path / "private-redis", options=(
        "--appendonly", "no", "--appendfsync", "everysec", "--maxmemory-policy", "allkeys-lru")
    ).start()
    connection = redis.Redis(port=server.port, decode_responses=True)
    yield server.url, connection
    connection.close()
    server.stop()


def test_bad_settings_value(env: dict[str, str]) -> None:
    code, checks, text = _doctor({**env, "WORKER_CONCURRENCY": "0"})
    assert code == 1
    assert checks["settings"]["status"] == "fail"
    assert "WORKER_CONCURRENCY='0'" in checks["settings"]["message"]
    assert "fix: correct these variables in the environment or .env" in text
    assert checks["redis"]["status"] == "skip"


@pytest.mark.parametrize("url", ["localhost:6379", "redis://:pa/ss@h:notaport/0"])
def test_malformed_redis_url_is_a_settings_failure(env: dict[str, str], url: str) -> None:
    code, checks, text = _doctor({**env, "WORKER_REDIS_URL": url})
    assert code == 1
    assert checks["settings"]["status"] == "fail"
    message = checks["settings"]["message"]
    assert "WORKER_REDIS_URL=" in message and "e.g. redis://localhost:6379/0" in message
    assert "pa/ss" not in text and checks["redis"]["status"] == "skip"


def test_weak_web_credentials(env: dict[str, str]) -> None:
    code, checks, text = _doctor({**env, "WEB_AUTH_TOKEN": "a" * 40,
                                  "WEB_BASIC_AUTH": "admin:password12345678"})
    assert code == 1
    message = checks["other secrets"]["message"]
    assert "WEB_AUTH_TOKEN looks guessable" in message
    assert "WEB_BASIC_AUTH's password looks guessable" in message
    assert "aaaaaaaa" not in text and "password1234" not in text


def test_placeholder_secret(env: dict[str, str]) -> None:
    code, checks, text = _doctor({**env, "EXPORT_TOKEN_SECRET": "your-secret-here"})
    assert code == 1
    assert "placeholder" in checks["export token secret"]["message"]
    assert "fix: set EXPORT_TOKEN_SECRET to 32+ random bytes" in text


def test_unreachable_redis_hides_the_password(env: dict[str, str]) -> None:
    url = f"redis://:hunter2-not-shown@127.0.0.1:{free_port()}/0"
    code, checks, text = _doctor({**env, "WORKER_REDIS_URL": url})
    assert code == 1
    assert "is unreachable" in checks["redis"]["message"]
    assert "fix: start Redis there or correct WORKER_REDIS_URL" in text
    assert "hunter2" not in text
    assert checks["workers"]["status"] == "skip"


def test_eviction_policy_and_persistence(env: dict[str, str],
                                         private_redis: tuple[str, redis.Redis]) -> None:
    url, connection = private_redis
    code, checks, text = _doctor({**env, "WORKER_REDIS_URL": url})
    assert code == 1
    assert checks["eviction policy"]["message"].startswith("maxmemory-policy is allkeys-lru")
    assert "fix: CONFIG SET maxmemory-policy noeviction" in text
    assert checks["persistence"]["status"] == "fail"
    assert "fix: CONFIG SET appendonly yes" in text

    connection.config_set("maxmemory-policy", "noeviction")
    connection.config_set("appendonly", "yes")
    _, checks, _ = _doctor({**env, "WORKER_REDIS_URL": url})
    assert checks["eviction policy"]["status"] == "ok"
    assert checks["persistence"]["message"] == "AOF on (appendfsync everysec)"


def test_no_worker_then_a_live_one(env: dict[str, str]) -> None:
    Path(env["EXPORT_DIR"]).mkdir(parents=True)
    _, checks, text = _doctor(env)
    assert checks["workers"]["status"] == "fail"
    assert "fix: start one: `bullpen worker`" in text
    assert checks["schedules"]["message"] == "missing: cleanup-exports-hourly"

    worker = start_worker(env)
    try:
        worker.wait_for("Schedules reconciled")
        _, checks, text = _doctor(env)
        assert checks["workers"]["message"].startswith("1 alive: ")
        assert checks["schedules"]["status"] == "ok", text
        assert run_cli(["health", "--worker"], env).returncode == 0
    finally:
        worker.kill()


async def test_orphaned_and_foreign_schedules(env: dict[str, str], client: QueueClient) -> None:
    for name in ("old-nightly", "node-report"):
        await client.upsert_scheduler(name, "health.check", {}, pattern="0 3 * * *", every_ms=None,
                                      tz=None, options=JobOptions())
    await client.redis.hset(client.keys.owned_schedules, "old-nightly", "{}")
    _, checks, text = _doctor(env)
    message = checks["schedules"]["message"]
    assert message == ("missing: cleanup-exports-hourly; orphaned: old-nightly; "
                       "foreign: node-report")
    assert "fix: restart a worker: at start-up it registers missing schedules and removes " \
           "orphaned ones" in text


def test_failed_job_in_the_last_hour(app_env: dict[str, str]) -> None:
    worker: Proc = start_worker(app_env)
    try:
        assert run_cli(["enqueue", "test.give_up"], app_env).returncode == 0
        worker.wait_for("failed")
    finally:
        worker.kill()
    _, checks, text = _doctor(app_env)
    assert checks["failed jobs"]["status"] == "fail"
    assert "1 in the last hour; latest: test.give_up" in checks["failed jobs"]["message"]
    assert "bad input: will not retry" in checks["failed jobs"]["message"]
    assert "fix: read them with `bullpen jobs --state failed`" in text


async def test_a_failed_job_cannot_forge_doctor_lines(app_env: dict[str, str],
                                                      client: QueueClient) -> None:
    forged = "\n✓ failed jobs: none in the last hour\nAll checks passed."
    job_id = await client.add(f"no.such{forged}", {}, JobOptions(attempts=1))
    worker: Proc = start_worker(app_env)
    try:
        await finished(client, job_id)
    finally:
        worker.kill()
    _, checks, text = _doctor(app_env)
    assert checks["failed jobs"]["status"] == "fail"
    lines = text.splitlines()
    assert "All checks passed." not in lines
    assert not any(line.startswith("✓ failed jobs") for line in lines), lines
    assert "latest: no.such\\n✓ failed jobs" in text


def test_export_dir_missing_then_a_file(env: dict[str, str]) -> None:
    export_dir = Path(env["EXPORT_DIR"])
    _, checks, text = _doctor(env)
    assert checks["export directory"]["message"].endswith("(EXPORT_DIR) does not exist")
    assert f"fix: mkdir -p {export_dir}, owned by the user" in text

    export_dir.write_text("not a directory")
    _, checks, text = _doctor(env)
    assert checks["export directory"]["message"].endswith("is not a directory")
    assert "fix: move that file away, or point EXPORT_DIR at a directory" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to any directory")
def test_export_dir_unwritable(env: dict[str, str]) -> None:
    export_dir = Path(env["EXPORT_DIR"])
    export_dir.mkdir(mode=0o500)
    try:
        _, checks, text = _doctor(env)
    finally:
        export_dir.chmod(0o700)
    assert "is not writable by uid" in checks["export directory"]["message"]
    assert f"fix: chown -R <service user> {export_dir}" in text


def test_healthy_secrets_are_never_printed(env: dict[str, str]) -> None:
    _, checks, text = _doctor(env)
    assert checks["export token secret"]["status"] == "ok"
    assert TEST_SECRET not in text


def test_health_fails_without_a_worker_or_redis(env: dict[str, str]) -> None:
    assert run_cli(["health"], env).returncode == 0
    missing = run_cli(["health", "--worker"], env)
    assert missing.returncode == 1
    assert "no live worker heartbeat from host" in missing.stderr
    closed = run_cli(["health"], {**env, "WORKER_REDIS_URL": f"redis://127.0.0.1:{free_port()}"})
    assert closed.returncode == 1
    assert "is unreachable" in closed.stderr


def test_embedded_mode_without_a_running_server(env: dict[str, str]) -> None:
    code, checks, text = _doctor({**env, "WORKER_REDIS_URL": ""})
    assert code == 1
    assert checks["redis"]["message"] == ("WORKER_REDIS_URL is unset and the embedded server "
                                          "is not running")
    assert "`bullpen embedded start`" in text
    assert not (Path(env["BULLPEN_VAR_DIR"]) / "redis" / "url").exists()


def test_doctor_and_health_print_no_warnings(env: dict[str, str]) -> None:
    # A sync redis-py Retry handed to an asyncio client printed a UserWarning on stderr.
    loud = {**env, "PYTHONWARNINGS": "always"}
    worker = start_worker(env)
    try:
        for command in (["doctor"], ["health"], ["health", "--worker"], ["jobs"]):
            result = run_cli(command, loud)
            assert "Warning" not in result.stderr, (command, result.stderr)
    finally:
        worker.signal()
        worker.wait()


def test_workers_of_other_bullmq_apps_count_as_live(env: dict[str, str], redis_url: str) -> None:
    # doctor said "no live worker heartbeat" while Node workers served the queue. A Node worker
    # is known by its blocking connection's name (what Queue.getWorkers() lists).
    node_like = redis.Redis.from_url(redis_url)
    node_like.client_setname(f"{queue_client_name('bull', env['WORKER_DEFAULT_QUEUE'])}:w:node-1")
    try:
        _, checks, _ = _doctor(env)
    finally:
        node_like.close()
    assert checks["workers"]["status"] == "ok"
    assert checks["workers"]["message"] == (
        "no bullpen worker heartbeat; 1 other BullMQ worker(s) on the queue: node-1")
