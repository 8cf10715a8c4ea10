"""`@task`: registered by name for the worker, callable as before, enqueued from the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from bullpen import Client, SyncClient, task
from bullpen.errors import ClientError, TaskError
from bullpen.loader import load_registry
from tests.helpers.processes import run_cli, running_worker


def test_the_loader_finds_declared_tasks_by_name(client_app_env: dict[str, str]) -> None:
    registry = load_registry("client_app")
    add, shout = registry.get("client.add"), registry.get("client.shout")
    assert add is not None and add.is_async and add.arity == 1
    assert shout is not None and not shout.is_async and shout.arity == 2
    assert "health.check" in registry


async def test_a_declared_task_is_still_a_plain_function(client_app_env: dict[str, str]) -> None:
    from client_app.tasks import add  # noqa: PLC0415 - importable only once the fixture ran

    assert await add({"a": 2, "b": 3}) == 5
    assert add.name == "client.add" and add.__name__ == "add"


def test_a_name_declared_twice_is_refused(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "twice_app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(
        "from bullpen import task\n\n"
        "@task('twice.same')\ndef first() -> None: ...\n\n"
        "@task('twice.same')\ndef second() -> None: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TaskError, match=r"'twice\.same' is declared twice"):
        load_registry("twice_app")


def test_a_handler_of_the_wrong_shape_fails_at_declaration() -> None:
    with pytest.raises(TaskError, match="takes 3 arguments"):
        task("bad.shape")(lambda a, b, c: None)


async def test_enqueue_and_enqueue_sync_run_in_a_worker(client_app_env: dict[str, str]) -> None:
    from client_app.tasks import add, shout  # noqa: PLC0415 - importable only once the fixture ran

    with pytest.raises(ClientError, match="no bullpen Client is open on this event loop"):
        await add.enqueue({"a": 1, "b": 2})
    with running_worker(client_app_env) as worker:
        async with Client():
            assert await (await add.enqueue({"a": 1, "b": 2})).wait(timeout=15) == 3
        async with Client() as explicit:
            job = await add.enqueue({"a": 4, "b": 5}, client=explicit)
            assert await job.wait(timeout=15) == 9
        sync_job = shout.enqueue_sync({"text": "hi"})
        assert sync_job.wait(timeout=15) == {"text": "HI", "in_thread": True}
        assert SyncClient.default() is SyncClient.default()
        # Still addressable by name, as a Node producer or the CLI would add it.
        added = run_cli(["enqueue", "client.add", "--data", '{"a": 10, "b": 1}'], client_app_env)
        assert added.returncode == 0, added.stderr
        assert SyncClient.default().job(added.stdout.strip()).wait(timeout=15) == 11
        SyncClient.default().close()
    assert "Traceback" not in worker.output


def test_an_isolated_task_runs_in_a_child_of_the_worker(client_app_env: dict[str, str]) -> None:
    registry = load_registry("client_app")
    where = registry.get("client.where")
    assert where is not None and where.isolation is not None
    assert where.isolation.max_jobs_per_child == 5
    with running_worker(client_app_env) as worker, SyncClient() as client:
        ran = client.enqueue("client.where").wait(timeout=30)
        assert ran["parent"] == worker.popen.pid != ran["pid"]
    assert "Traceback" not in worker.output
