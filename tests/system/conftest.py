"""Fixtures for the cross-cutting suites: figures that fault tests report."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.helpers import ARTIFACTS
from tests.helpers.ledger import ledger_env

ARTIFACT = ARTIFACTS / "reliability.json"
# The topology tests: lock = stalled interval = shutdown timeout, the defaults' ratios, shortened.
LOCK_MS = 4000


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A dict the test fills with its figures; printed and merged into the artifact after it."""
    figures: dict[str, Any] = {}
    yield figures
    if not figures:
        return
    name = request.node.name.removeprefix("test_")
    ARTIFACT.parent.mkdir(exist_ok=True)
    merged = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    merged[name] = figures | {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    ARTIFACT.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(f"\n[reliability] {name}: {json.dumps(figures, sort_keys=True)}")


@pytest.fixture
def topo_env(offline_env: dict[str, str], redis_url: str, queue_name: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """`offline_env` with the topology app and its ledger (removed afterwards), quick timings,
    a web token; the Redis URL is the test's to set."""
    values = {**offline_env, **ledger_env(f"{queue_name}:ledger"),
              "WORKER_LOCK_DURATION_MS": str(LOCK_MS), "WORKER_STALLED_INTERVAL_MS": str(LOCK_MS),
              "WORKER_SHUTDOWN_TIMEOUT_S": str(LOCK_MS / 1000), "WORKER_CONCURRENCY": "4",
              "WORKER_KEEP_COMPLETED": "100000", "WEB_AUTH_TOKEN": secrets.token_urlsafe(32)}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(values["PYTHONPATH"].split(os.pathsep)[0])
    yield values
    ledger = redis.Redis.from_url(redis_url)
    try:
        ledger.delete(values["TOPOLOGY_LEDGER_KEY"])
    finally:
        ledger.close()
