"""Fixtures for the web tests: the app over this test's queue, an httpx client, a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from bullpen.adapter import QueueClient
from bullpen.settings import Settings
from bullpen.web import create_app
from tests.helpers.processes import Proc, start_worker


@pytest.fixture
def web_env(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The sample app's environment with one attempt per job, so a failure stays failed."""
    monkeypatch.setenv("WORKER_DEFAULT_ATTEMPTS", "1")
    return {**app_env, "WORKER_DEFAULT_ATTEMPTS": "1"}


@pytest.fixture
def web_settings(web_env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
async def http(web_settings: Settings, client: QueueClient
               ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(web_settings, client=client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as session:
        yield session


@pytest.fixture
def worker(web_env: dict[str, str]) -> Iterator[Proc]:
    proc = start_worker(web_env)
    yield proc
    proc.kill()
