"""Tasks for tests: each run is recorded in a Redis list so tests can count runs exactly."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import json
import os
import re
import time
from typing import Any

import redis

from bullpen import JobContext, UnrecoverableJobError, isolated

_sync_redis: dict[str, redis.Redis] = {}


def _runs_key(ctx: JobContext) -> str:
    return f"{ctx.settings.worker_prefix}:{ctx.settings.worker_default_queue}:test:runs"


def _sync_client(ctx: JobContext) -> redis.Redis:
    url = ctx.settings.worker_redis_url or ""
    if url not in _sync_redis:
        _sync_redis[url] = redis.Redis.from_url(url, decode_responses=True)
    return _sync_redis[url]


async def record(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Async: note the run (job id, scheduler, start time) and return the data."""
    entry = {"job_id": ctx.job.id, "scheduler": ctx.job.scheduler_id, "at_ms": time.time() * 1000,
             "worker": ctx.worker_id, "data": data, "queue": ctx.queue.name}
    await ctx.redis.rpush(_runs_key(ctx), json.dumps(entry))
    ctx.log(f"recorded {ctx.job.id}")
    return {"echo": data}


def record_sync(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Plain def: runs in a thread; optionally blocks (sleep or CPU) for `block_s`."""
    block_s = float(data.get("block_s", 0))
    if data.get("cpu"):
        deadline = time.monotonic() + block_s
        digest = b""
        while time.monotonic() < deadline:
            digest = hashlib.sha256(digest).digest()
    elif block_s:
        time.sleep(block_s)
    _sync_client(ctx).rpush(_runs_key(ctx), json.dumps({"job_id": ctx.job.id,
                                                         "at_ms": time.time() * 1000,
                                                         "queue": ctx.queue.name}))
    ctx.log("sync handler ran")
    return {"thread": True, "data": data}


def span(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Plain def (a thread of its queue's pool): records its start and end with its queue and
    worker, blocking `block_s` in between."""
    base = {"job_id": ctx.job.id, "queue": ctx.queue.name, "worker": ctx.worker_id,
            "enqueued_ms": ctx.job.timestamp_ms}
    runs = _sync_client(ctx)
    runs.rpush(_runs_key(ctx), json.dumps(base | {"event": "start", "at_ms": time.time() * 1000}))
    time.sleep(float(data.get("block_s", 0)))
    runs.rpush(_runs_key(ctx), json.dumps(base | {"event": "end", "at_ms": time.time() * 1000}))
    return {"queue": ctx.queue.name, "n": data.get("n")}


async def flaky(data: dict[str, Any], ctx: JobContext) -> str:
    """Fails until attempt `succeed_on`; records each attempt's start time."""
    await ctx.redis.rpush(_runs_key(ctx), json.dumps({"job_id": ctx.job.id,
                                                       "at_ms": time.time() * 1000}))
    if ctx.job.attempts_made + 1 < int(data.get("succeed_on", 99)):
        raise RuntimeError(f"flaky failure on attempt {ctx.job.attempts_made + 1}")
    return "ok"


def give_up(_data: dict[str, Any]) -> None:
    raise UnrecoverableJobError("bad input: will not retry")


async def slow(data: dict[str, Any], ctx: JobContext) -> str:
    """Async sleep for `sleep_s`, recording start and finish."""

    await ctx.redis.rpush(_runs_key(ctx), json.dumps({"job_id": ctx.job.id, "event": "start"}))
    await asyncio.sleep(float(data.get("sleep_s", 1)))
    await ctx.redis.rpush(_runs_key(ctx), json.dumps({"job_id": ctx.job.id, "event": "end"}))
    return "done"


async def chaos(data: dict[str, Any], ctx: JobContext) -> int:
    """Async sleep for `sleep_ms`, recording start and end with this process's pid (chaos tests
    match runs to the processes they killed) and when Redis handed the job out (`fetched_ms`)."""

    base = {"job_id": ctx.job.id, "pid": os.getpid(), "attempt": ctx.job.attempts_made}
    await ctx.redis.rpush(_runs_key(ctx), json.dumps(base | {
        "event": "start", "at_ms": time.time() * 1000, "fetched_ms": ctx.job.processed_on_ms}))
    await asyncio.sleep(float(data.get("sleep_ms", 100)) / 1000)
    await ctx.redis.rpush(_runs_key(ctx), json.dumps(base | {"event": "end",
                                                              "at_ms": time.time() * 1000}))
    return int(data.get("i", 0))


def hold_gil(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Backtracks in `re` (C code that never releases the GIL) for an input of `n` characters;
    meant to run isolated. Logs and reports progress on the way."""
    ctx.log("holding the GIL")
    ctx.progress(10)
    started = time.monotonic()
    re.match(r"(a+)+$", "a" * int(data["n"]) + "b")
    _sync_client(ctx).rpush(_runs_key(ctx), json.dumps({"job_id": ctx.job.id, "pid": os.getpid(),
                                                         "held_s": time.monotonic() - started}))
    ctx.progress(100)
    ctx.log("released")
    return {"pid": os.getpid()}


def isolated_echo(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Meant to run isolated: echoes, fails on request, or crashes its process on request."""
    ctx.log(f"attempt {ctx.job.attempts_made + 1}")
    if data.get("exit"):
        os._exit(int(data["exit"]))
    if data.get("segfault"):
        ctypes.string_at(0)
    if data.get("fail"):
        raise ValueError(f"asked to fail: {data['fail']}")
    return {"pid": os.getpid(), "echo": data}


task_handlers = {
    "test.span": span,
    "test.record": record,
    "test.record_sync": record_sync,
    "test.flaky": flaky,
    "test.give_up": give_up,
    "test.slow": slow,
    "test.chaos": chaos,
    "test.hold_gil": isolated(hold_gil),
    "test.hold_gil_inline": hold_gil,
    "test.isolated": isolated(isolated_echo, max_jobs_per_child=2),
}

# Tests put tasks on queues of their own: SAMPLE_TASK_QUEUES='{"test.span": "<queue>"}'.
task_queues = json.loads(os.environ.get("SAMPLE_TASK_QUEUES", "{}"))
