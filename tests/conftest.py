"""Fixtures: a real Redis (URL from BULLPEN_TEST_REDIS_URL), one fresh queue name per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bullpen.adapter import QueueClient
from bullpen.settings import Settings


def _test_redis_url() -> str:
    """BULLPEN_TEST_REDIS_URL; else a Redis on 127.0.0.1:6379; else a private server for the run."""
    url = os.environ.get("BULLPEN_TEST_REDIS_URL")
    if not url:
        import redis

        url = "redis://127.0.0.1:6379/0"
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except redis.RedisError:
            import atexit
            import tempfile

            from support import PrivateRedis

            server = PrivateRedis(Path(tempfile.mkdtemp(prefix="bullpen-test-redis-"))).start()
            atexit.register(server.stop)
            url = server.url
        os.environ["BULLPEN_TEST_REDIS_URL"] = url  # seen by helpers and child processes too
    return url


REDIS_URL = _test_redis_url()
TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue name no other test uses; its keys are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    import redis

    sync = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(sync.scan_iter(match=f"bull:{name}:*", count=1000))
        for start in range(0, len(keys), 500):
            sync.delete(*keys[start:start + 500])
    finally:
        sync.close()


@pytest.fixture
def env(queue_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for bullpen processes and Settings: this test's queue, quick timings."""
    values = {
        "WORKER_REDIS_URL": REDIS_URL,
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
def settings(env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
async def client(queue_name: str) -> AsyncIterator[QueueClient]:
    queue = QueueClient(REDIS_URL, queue_name)
    yield queue
    await queue.close()


@pytest.fixture
async def raw_redis() -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield connection
    await connection.aclose()


APPS_DIR = str(Path(__file__).parent / "apps")


@pytest.fixture
def app_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """`env` plus the sample test app (tasks that record their runs in Redis)."""
    extra = {
        "BULLPEN_APP": "sample_app",
        "PYTHONPATH": os.pathsep.join(filter(None, [APPS_DIR, os.environ.get("PYTHONPATH")])),
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(APPS_DIR)
    return {**env, **extra}
