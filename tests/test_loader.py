"""Loading tasks and schedules: bullpen's own, extended by the app's (BULLPEN_APP)."""

from __future__ import annotations

import importlib

import pytest

from bullpen.errors import TaskError
from bullpen.loader import load_registry, load_schedules

REGISTRY = load_registry(None)


def test_defaults_are_bullpens_own_tasks() -> None:
    assert load_registry(None).names() == ["exports.cleanup", "exports.create", "health.check"]


def test_app_tasks_extend_the_defaults(offline_app_env: dict[str, str]) -> None:
    registry = load_registry("sample_app")
    assert "test.record" in registry and "health.check" in registry


def test_a_missing_app_module_is_a_clear_error() -> None:
    with pytest.raises(TaskError, match=r"cannot import 'no_such_app_xyz\.tasks'"):
        load_registry("no_such_app_xyz")


def test_bullpen_declares_the_hourly_cleanup() -> None:
    [hourly] = load_schedules(None, REGISTRY)
    assert (hourly.name, hourly.task_name, hourly.pattern) == (
        "cleanup-exports-hourly", "exports.cleanup", "0 * * * *")


def test_an_app_extends_the_defaults(offline_app_env: dict[str, str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import sample_app.schedules  # noqa: PLC0415 - the sample app is on sys.path only inside the test

    monkeypatch.setenv("SAMPLE_SCHEDULES",
                       '[{"name": "tick", "task_name": "test.record", "every_ms": 1000}]')
    try:
        importlib.reload(sample_app.schedules)
        registry = load_registry("sample_app")
        names = [item.name for item in load_schedules("sample_app", registry)]
    finally:
        monkeypatch.delenv("SAMPLE_SCHEDULES")
        importlib.reload(sample_app.schedules)  # later tests in this process see no extra schedule
    assert names == ["cleanup-exports-hourly", "tick"]
