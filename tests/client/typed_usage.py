"""App code using the public client API, for `mypy --strict` only (never run by pytest).

If a public signature loses its types, mypy fails here before an app's type check does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import datetime
from typing import Any, assert_type

from bullpen import (
    Client,
    Job,
    JobFailed,
    JobInfo,
    JobSpec,
    SyncClient,
    SyncJob,
    exporter,
    task,
)
from bullpen.client import JobState, TaskFunction
from bullpen.exports.serving import Download
from bullpen.exports.store import Export


@task("typed.add")
async def add(data: dict[str, int]) -> int:
    return data["a"] + data["b"]


@task("typed.shout")
def shout(data: dict[str, str]) -> str:
    return data["text"].upper()


@exporter("typed.rows", columns=("n",))
def rows(params: dict[str, Any]) -> Iterator[dict[str, int]]:
    yield {"n": 1}


async def numbers() -> AsyncIterator[dict[str, int]]:
    yield {"n": 1}


async def use_the_async_client() -> None:
    async with Client(queue="typed") as client:
        job = await client.enqueue("typed.add", {"a": 1, "b": 2}, delay_ms=10, attempts=2)
        assert_type(job, Job)
        assert_type(job.id, str)
        try:
            result: Any = await job.wait(timeout=5.0)
        except JobFailed as failure:
            assert_type(failure.reason, str)
        except TimeoutError:
            pass
        assert_type(await job.status(), JobState)
        many = await client.enqueue_many([("typed.add", {}), JobSpec("typed.shout", priority=1)])
        assert_type(many, list[Job])
        info = await client.get_job(job.id)
        assert_type(info, JobInfo | None)
        if info is not None:
            assert_type(info.created_at, datetime)
        export = await client.exports.create(numbers(), filename="n.csv")
        assert_type(export, Export)
        url: str = client.exports.download_url(export, base_url="https://example.com/jobs")
        requested = await client.exports.request("typed.rows", {"n": 1})
        assert_type(requested, Job)
        answer = client.exports.serve(url.rsplit("/", 1)[1])
        assert_type(answer, Download)
        assert_type(await add.enqueue({"a": 1, "b": 1}, client=client), Job)
    declared: TaskFunction[[dict[str, int]], Coroutine[Any, Any, int]] = add
    print(declared.name)
    print(result)


def use_the_sync_client() -> None:
    with SyncClient() as client:
        job = client.enqueue("typed.shout", {"text": "hi"})
        assert_type(job, SyncJob)
        value: Any = job.wait(timeout=1)
        assert_type(job.status(), JobState)
        assert_type(client.get_job(job.id), JobInfo | None)
        assert_type(client.exports.create(b"x", filename="x.bin"), Export)
        assert_type(shout.enqueue_sync({"text": "a"}), SyncJob)
        assert_type(shout({"text": "a"}), str)
        print(value)
