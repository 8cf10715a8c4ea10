"""A Redis password with / # ? @ in it, in each URL form, never shows: not in the worker's log,
doctor, health, enqueue, jobs, cleanup-exports, nor any page or API answer of `bullpen web`."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.helpers.processes import Proc, eventually, run_cli, start_worker
from tests.helpers.redis_server import PrivateRedis, private_redis
from tests.helpers.web import running_web

PASSWORD = "pa/ss#wo?rd@x9"
TOKEN = "web-token-Hq7Zt2Lm9Xr4Wc6Np1Vb8Ks3Jd5Fg0Ye"
PAGES = ("/", "/jobs/completed", "/jobs/failed", "/schedules", "/workers", "/enqueue",
         "/exports", "/exports/a/b", "/nowhere", "/api/overview", "/api/jobs?state=completed",
         "/api/workers", "/readyz", "/metrics")
FORMS = {
    "unencoded": lambda port: f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
    "encoded user": lambda port: f"redis://default:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/0",
    "query": lambda port: f"redis://127.0.0.1:{port}/0?password={quote(PASSWORD, safe='')}",
}


@pytest.fixture(scope="module")
def guarded_redis() -> Iterator[PrivateRedis]:
    with private_redis(password=PASSWORD) as server:
        yield server


def _pieces(secret: str) -> set[str]:
    return {secret[i:i + 4] for i in range(len(secret) - 3)} | {quote(PASSWORD, safe="")}


def _assert_hidden(where: str, text: str) -> None:
    leaked = sorted(piece for piece in _pieces(PASSWORD) if piece in text)
    assert not leaked, f"{where} shows {leaked}:\n{text[:2000]}"


@pytest.mark.parametrize("form", FORMS)
def test_the_password_never_shows(app_env: dict[str, str], guarded_redis: PrivateRedis,
                                  form: str) -> None:
    env = {**app_env, "WORKER_REDIS_URL": FORMS[form](guarded_redis.port),
           "WEB_AUTH_TOKEN": TOKEN}
    worker = start_worker(env)
    try:
        enqueued = run_cli(["enqueue", "health.check"], env)
        assert enqueued.returncode == 0, enqueued.stderr
        eventually(lambda: "completed=1" in run_cli(["jobs"], env).stdout, timeout=15)
        outputs = {name: run_cli(args, env) for name, args in {
            "jobs": ["jobs", "--state", "completed"], "doctor": ["doctor"],
            "health": ["health", "--worker"], "cleanup-exports": ["cleanup-exports"],
            "job": ["job", enqueued.stdout.strip()]}.items()}
        assert outputs["health"].returncode == 0, outputs["health"].stderr
        assert "redis://" in outputs["doctor"].stdout and ":***@" in outputs["doctor"].stdout
        with running_web(env) as (web, base):
            for path in PAGES:
                page = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
                assert page.status_code in (200, 404), (path, page.status_code)
                _assert_hidden(f"GET {path}", page.text)
            _assert_hidden("bullpen web", web.output)
    finally:
        worker.signal()
        worker.wait()
    _assert_hidden("the worker log", worker.output)
    assert "Using Redis at redis://" in worker.output and ":***@" in worker.output
    for name, result in {"enqueue": enqueued, **outputs}.items():
        _assert_hidden(f"bullpen {name}", result.stdout + result.stderr)


def test_a_dead_server_never_shows_it_either(app_env: dict[str, str]) -> None:
    with private_redis(password=PASSWORD) as server:
        url = FORMS["unencoded"](server.port)
    env = {**app_env, "WORKER_REDIS_URL": url}
    for args in (["enqueue", "health.check"], ["jobs"], ["doctor"], ["health"],
                 ["cleanup-exports"]):
        result = run_cli(args, env)
        assert result.returncode != 0, args
        _assert_hidden(f"bullpen {' '.join(args)}", result.stdout + result.stderr)


@pytest.mark.parametrize("url", [
    f"redis+sentinel://app:{quote(PASSWORD, safe='')}@127.0.0.1:1,127.0.0.1:2/mymaster/0"
    f"?sentinel_password={quote(PASSWORD, safe='')}",
    f"redis+sentinel://:{PASSWORD}@127.0.0.1:1/mymaster",
    f"redis+cluster://:{PASSWORD}@127.0.0.1:1,127.0.0.1:2",
])
def test_no_sentinel_or_cluster_that_does_not_answer_shows_it(app_env: dict[str, str],
                                                            url: str) -> None:
    """Both passwords of a Sentinel URL, and a Cluster's, stay hidden in every refusal."""
    env = {**app_env, "WORKER_REDIS_URL": url, "WORKER_PREFIX": "{bull}"}
    for args in (["enqueue", "health.check"], ["jobs"], ["doctor"], ["health"]):
        result = run_cli(args, env)
        assert result.returncode != 0, args
        _assert_hidden(f"bullpen {' '.join(args)}", result.stdout + result.stderr)
    worker = Proc(["worker"], env)
    try:
        worker.wait_for("is unreachable")
    finally:
        worker.kill()
    _assert_hidden("the worker log", worker.output)
    assert ":***@127.0.0.1:1" in worker.output
