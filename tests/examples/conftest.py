"""Fixtures for the example apps: each runs from examples/ with its own BULLPEN_APP, next to a
real `bullpen worker` on this test's queue."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import REPO
from tests.helpers.processes import Proc, running_worker

EXAMPLES = REPO / "examples"


@pytest.fixture
def example_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch
                ) -> Callable[[str, dict[str, str]], dict[str, str]]:
    """Set up the environment for example `app` (its package importable here and in children)."""

    def configure(app: str, extra: dict[str, str]) -> dict[str, str]:
        values = {"BULLPEN_APP": app, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")])), **extra}
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        monkeypatch.syspath_prepend(str(EXAMPLES))
        for name in [module for module in sys.modules if module.split(".")[0] == app]:
            monkeypatch.delitem(sys.modules, name)  # built afresh from this test's settings
        return {**env, **values}

    return configure


@pytest.fixture
def worker_for() -> Iterator[Callable[[dict[str, str]], Proc]]:
    """Start a `bullpen worker` for an example's environment; SIGTERM and waited for after."""
    with contextlib.ExitStack() as stack:
        yield lambda values: stack.enter_context(running_worker(values))
