"""Loading tasks and schedules: bullpen's own, extended by the app's (BULLPEN_APP)."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bullpen.definitions.schedule import ScheduledJob, validate
from bullpen.errors import BullpenError, QueueNameError, ScheduleError, TaskError
from bullpen.loader import load_definitions, load_registry, load_schedules
from bullpen.settings import load_settings
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


def _write_app(root: Path, name: str, tasks: str, schedules: str = "scheduled_jobs = []\n"
               ) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(tasks)
    (package / "schedules.py").write_text(schedules)


QUEUED_TASKS = '''
from bullpen import task

def plain(data):
    return data

@task("app.report", queue="reports")
def report(data):
    return data

task_handlers = {"app.plain": plain}
task_queues = {"app.plain": "bulk", "exports.create": "reports"}
'''


def test_tasks_name_their_queue_by_decorator_or_mapping_and_schedules_follow(
        offline_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_app(tmp_path, "queued_app", QUEUED_TASKS, (
        "from bullpen import ScheduledJob\n"
        "scheduled_jobs = [\n"
        "    ScheduledJob(name='r', task_name='app.report', every_ms=1000),\n"
        "    ScheduledJob(name='p', task_name='app.plain', every_ms=1000, queue='other'),\n"
        "    ScheduledJob(name='h', task_name='health.check', every_ms=1000),\n"
        "]\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("WORKER_QUEUES", "extra=2")
    definitions = load_definitions("queued_app")
    registry = definitions.registry
    assert registry.queue_of("app.report") == "reports"
    assert registry.queue_of("app.plain") == "bulk"
    assert registry.queue_of("exports.create") == "reports"  # bullpen's own task, moved
    assert registry.queue_of("health.check") is None
    default = offline_env["WORKER_DEFAULT_QUEUE"]
    assert [item.name for item in definitions.schedules_on("reports", default)] == ["r"]
    assert [item.name for item in definitions.schedules_on("other", default)] == ["p"]
    assert [item.name for item in definitions.schedules_on(default, default)] == [
        "cleanup-exports-hourly", "h"]
    assert definitions.queues(load_settings()) == [default, "bulk", "extra", "other", "reports"]


@pytest.mark.parametrize(("tasks", "message"), [
    ("task_handlers = {}\ntask_queues = {'no.such': 'q'}\n",
     r"task_queues names task 'no.such', which is not registered"),
    ("task_handlers = {}\ntask_queues = {'health.check': 'a:b'}\n",
     r"task 'health.check': queue name 'a:b' cannot be used"),
    ("task_handlers = {}\ntask_queues = ['health.check']\n",
     r"task_queues must be a dict of task name → queue name"),
    ("from bullpen import task\n@task('t.x', queue='a')\ndef x(): pass\n"
     "task_queues = {'t.x': 'b'}\n",
     r"task 't.x' is put on queue 'a' by @task .* and on 'b' by .*task_queues"),
])
def test_a_bad_queue_declaration_is_refused_at_load_naming_the_task(
        tasks: str, message: str, offline_env: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"bad_queue_app_{abs(hash(message)) % 10**8}"
    _write_app(tmp_path, name, tasks)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BullpenError, match=message):
        load_registry(name)


def test_a_decorator_with_a_bad_queue_fails_at_import() -> None:
    from bullpen import task  # noqa: PLC0415 - the decorator under test

    with pytest.raises(QueueNameError, match=r"@task\('t.y'\): queue name 'a b' cannot be used"):
        task("t.y", queue="a b")(lambda: None)


def test_a_schedule_with_a_bad_queue_is_refused_naming_it() -> None:
    bad = ScheduledJob(name="s", task_name="health.check", every_ms=10, queue="a/b")
    with pytest.raises(ScheduleError, match=r"Schedule 's': queue: queue name 'a/b' cannot"):
        validate([bad], REGISTRY)
