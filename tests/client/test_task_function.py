"""`@task`: registered by name for the worker, callable as before, enqueued from the app."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bullpen import Client, JobSpec, SyncClient, task
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


QUEUED_APP = '''
from bullpen import task

@task("queued.work", queue={queue!r})
async def work(data, ctx):
    return {{"queue": ctx.queue.name, "n": data.get("n")}}

@task("queued.here")
async def here(data, ctx):
    return {{"queue": ctx.queue.name, "n": data.get("n")}}
'''


async def test_a_task_on_its_own_queue_is_routed_there_by_every_client_call(
        env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = env["WORKER_DEFAULT_QUEUE"]
    slow = f"{default}-slow"
    app = f"queued_app_{default.replace('-', '_')}"
    (tmp_path / app).mkdir()
    (tmp_path / app / "__init__.py").write_text("")
    (tmp_path / app / "tasks.py").write_text(QUEUED_APP.format(queue=slow))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BULLPEN_APP", app)
    app_env = {**env, "BULLPEN_APP": app, "PYTHONPATH": str(tmp_path)}
    tasks = importlib.import_module(f"{app}.tasks")
    with running_worker(app_env, "--queue", default, "--queue", slow) as worker:
        async with Client() as client:
            assert client.queue_of("queued.work") == slow
            decorated = await tasks.work.enqueue({"n": 1})
            by_name = await client.enqueue("queued.work", {"n": 2})
            moved = await client.enqueue("queued.here", {"n": 3}, queue=slow)
            batch = await client.enqueue_many([("queued.here", {"n": 4}),
                                               JobSpec("queued.work", {"n": 5})])
            jobs = [decorated, by_name, moved, *batch]
            assert [job.queue for job in jobs] == [slow, slow, slow, default, slow]
            results = [await job.wait(timeout=15) for job in jobs]
            assert results == [{"queue": job.queue, "n": n} for job, n in zip(jobs, range(1, 6),
                                                                               strict=True)]
            info = await client.get_job(by_name.id, queue=slow)
            assert info is not None and info.queue == slow and info.result["n"] == 2
            assert await client.job(by_name.id, queue=slow).wait(timeout=5) == results[1]
        with SyncClient() as sync:
            job = tasks.work.enqueue_sync({"n": 6}, client=sync)
            assert job.queue == slow and job.wait(timeout=15) == {"queue": slow, "n": 6}
    assert "Traceback" not in worker.output
