"""Fixtures for the client tests: the decorator-declared test app (tests/apps/client_app)."""

from __future__ import annotations

import os

import pytest

from tests.helpers import APPS_DIR


@pytest.fixture
def client_app_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """`env` with BULLPEN_APP=client_app, importable here and in child processes."""
    extra = {
        "BULLPEN_APP": "client_app",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS_DIR),
                                                    os.environ.get("PYTHONPATH")])),
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(APPS_DIR))
    return {**env, **extra}
