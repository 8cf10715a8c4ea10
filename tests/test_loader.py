"""Loading tasks and schedules: bullpen's own, extended by the app's (BULLPEN_APP)."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bullpen.errors import TaskError
from bullpen.loader import load_registry, load_schedules
from tests.helpers.processes import BULLPEN, Proc, eventually

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


SHADOW = ("import os\n"
          "open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'SHADOWED-' + __name__),"
          " 'w').close()\n"
          "raise ImportError('a stray module in the working directory')\n")


def test_modules_in_the_working_directory_never_shadow_installed_ones(
        app_env: dict[str, str], tmp_path: Path) -> None:
    for name in ("uvloop", "cron_descriptor", "itsdangerous"):
        (tmp_path / f"{name}.py").write_text(SHADOW)
    # --processes starts its children with `python -m bullpen`, which puts the working
    # directory first on sys.path; the console script and `-m` are both covered.
    fleet = Proc(["worker", "--processes", "2"], app_env, cwd=str(tmp_path))
    try:
        eventually(lambda: fleet.output.count("Worker started and ready") >= 2
                   or any(tmp_path.glob("SHADOWED-*")), timeout=30)
        assert sorted(path.name for path in tmp_path.glob("SHADOWED-*")) == []
    finally:
        fleet.signal(signal.SIGTERM)
        fleet.wait(30)
    for command in ([BULLPEN, "schedules"], [sys.executable, "-m", "bullpen", "schedules"]):
        result = subprocess.run(command, env={**os.environ, **app_env}, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.glob("SHADOWED-*")) == []
