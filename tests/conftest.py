"""Fixtures: a real Redis (URL from BULLPEN_TEST_REDIS_URL), one fresh queue name per test.

Nothing here connects to Redis until a test asks for a Redis fixture, so tests of pure code
run with no server at all.
"""

from __future__ import annotations

import atexit
import functools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from bullpen.adapter import QueueClient
from bullpen.settings import Settings
from tests.helpers import APPS_DIR as HELPER_APPS_DIR
from tests.helpers import TEST_SECRET
from tests.helpers.redis_server import PrivateRedis

APPS_DIR = str(HELPER_APPS_DIR)


@functools.cache
def test_redis_url() -> str:
    """BULLPEN_TEST_REDIS_URL; else a Redis on 127.0.0.1:6379; else a private server for the run."""
    url = os.environ.get("BULLPEN_TEST_REDIS_URL")
    if url:
        return url
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        server = PrivateRedis(Path(tempfile.mkdtemp(prefix="bullpen-test-redis-"))).start()
        atexit.register(server.stop)
        url = server.url
    os.environ["BULLPEN_TEST_REDIS_URL"] = url  # seen by helpers and child processes too
    return url


@pytest.fixture
def redis_url() -> str:
    return test_redis_url()


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A queue name no other test uses; when the test used Redis, the keys of the queue and of
    queues named after it (`<queue>-slow`) are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    if "redis_url" in request.fixturenames:
        _delete_queue_keys(test_redis_url(), name)


def _delete_queue_keys(url: str, queue: str) -> None:
    sync = redis.Redis.from_url(url)
    try:
        # "[-:]", not "[:-]": Redis reads ":-]" as a range and the class never closes.
        keys = list(sync.scan_iter(match=f"bull:{queue}[-:]*", count=1000))
        for start in range(0, len(keys), 500):
            sync.delete(*keys[start:start + 500])
    finally:
        sync.close()


@pytest.fixture
def offline_env(queue_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                ) -> dict[str, str]:
    """Environment for Settings without Redis: this test's queue, quick timings, a secret.

    WORKER_REDIS_URL points at a closed port, so code that reaches for Redis by mistake fails
    at once instead of starting the embedded server.
    """
    values = {
        "WORKER_REDIS_URL": "redis://127.0.0.1:1/0",
        "WORKER_DEFAULT_QUEUE": queue_name,
        "WORKER_LOCK_DURATION_MS": "2000",
        "WORKER_STALLED_INTERVAL_MS": "1000",
        "WORKER_SHUTDOWN_TIMEOUT_S": "5",
        "WORKER_BACKOFF_DELAY_MS": "100",
        "WORKER_LIMITER_MAX": "0",
        "WORKER_HEARTBEAT_INTERVAL_S": "0.5",
        "EXPORT_TOKEN_SECRET": TEST_SECRET,
        "EXPORT_DIR": str(tmp_path / "exports"),
        "BULLPEN_VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "INFO",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return values


@pytest.fixture
def env(offline_env: dict[str, str], redis_url: str, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[dict[str, str]]:
    """`offline_env` with the test Redis (the queue's keys go with `queue_name`)."""
    monkeypatch.setenv("WORKER_REDIS_URL", redis_url)
    yield {**offline_env, "WORKER_REDIS_URL": redis_url}


@pytest.fixture
def offline_settings(offline_env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
async def client(redis_url: str, queue_name: str) -> AsyncIterator[QueueClient]:
    queue = QueueClient(redis_url, queue_name)
    yield queue
    await queue.close()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    await connection.aclose()


def _with_app(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    extra = {
        "BULLPEN_APP": "sample_app",
        "PYTHONPATH": os.pathsep.join(filter(None, [APPS_DIR, os.environ.get("PYTHONPATH")])),
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(APPS_DIR)
    return {**values, **extra}


@pytest.fixture
def app_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """`env` plus the sample test app (tasks that record their runs in Redis)."""
    return _with_app(env, monkeypatch)


@pytest.fixture
def offline_app_env(offline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
                    ) -> dict[str, str]:
    """`offline_env` plus the sample test app."""
    return _with_app(offline_env, monkeypatch)
