"""Fixtures for the cross-cutting suites: figures that fault tests report."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import ARTIFACTS

ARTIFACT = ARTIFACTS / "reliability.json"


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
