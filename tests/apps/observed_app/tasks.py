"""Tasks for the tracing and cancelling tests: each notes what it saw in a Redis list."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis
from opentelemetry import trace

from bullpen import JobContext, isolated

tracer = trace.get_tracer("observed_app")
_sync: dict[str, redis.Redis] = {}


def _key(settings: Any) -> str:
    return f"{settings.worker_prefix}:{settings.worker_default_queue}:test:seen"


def _note(ctx: Any, **fields: Any) -> None:
    """From any handler (a thread, an isolated child): one JSON line in the test's list."""
    url = ctx.settings.worker_redis_url or ""
    if url not in _sync:
        _sync[url] = redis.Redis.from_url(url, decode_responses=True)
    _sync[url].rpush(_key(ctx.settings), json.dumps({"job_id": ctx.job.id,
                                                     "at_ms": time.time() * 1000, **fields}))


async def work(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    with tracer.start_as_current_span("user-work"):
        await asyncio.sleep(0)
    return {"ok": True, "data": data}


async def flaky(data: dict[str, Any], ctx: JobContext) -> str:
    if ctx.job.attempts_made == 0:
        raise RuntimeError("smtp down")
    return "sent"


def sync_work(data: dict[str, Any], ctx: JobContext) -> str:
    with tracer.start_as_current_span("user-thread-work"):
        return "thread"


def isolated_work(data: dict[str, Any], ctx: Any) -> str:
    with tracer.start_as_current_span("user-child-work"):
        return "child"


def poll(data: dict[str, Any], ctx: JobContext) -> int:
    """Polls ctx.cancelled while it works; stops with raise_if_cancelled."""
    _note(ctx, event="start")
    steps = 0
    deadline = time.monotonic() + float(data.get("max_s", 20))
    while not ctx.cancelled and time.monotonic() < deadline:
        steps += 1
        time.sleep(0.02)
    _note(ctx, event="stop", cancelled=ctx.cancelled, reason=ctx.cancel_reason, steps=steps)
    if ctx.cancelled and data.get("save"):
        ctx.progress({"saved_steps": steps})
    ctx.raise_if_cancelled()
    return steps


async def wait_async(data: dict[str, Any], ctx: JobContext) -> str:
    """Awaits a long sleep; a cancel reaches it as asyncio.CancelledError."""
    _note(ctx, event="start")
    try:
        await asyncio.sleep(float(data.get("max_s", 20)))
    except asyncio.CancelledError:
        _note(ctx, event="cancelled", reason=ctx.cancel_reason)
        raise
    return "slept"


async def save_at_shutdown(data: dict[str, Any], ctx: JobContext) -> str:
    """Works until told to stop (wait_cancelled), saves its progress, hands the job back."""
    _note(ctx, event="start")
    work_done = asyncio.ensure_future(asyncio.sleep(float(data.get("max_s", 20))))
    told = asyncio.ensure_future(ctx.wait_cancelled())
    await asyncio.wait({work_done, told}, return_when=asyncio.FIRST_COMPLETED)
    work_done.cancel()
    if told.done():
        _note(ctx, event="told", reason=told.result())
        ctx.progress({"saved": True})
        ctx.raise_if_cancelled()
    told.cancel()
    return "finished"


def ignore(data: dict[str, Any], ctx: JobContext) -> str:
    """Never looks at the signal: sleeps, then returns."""
    _note(ctx, event="start")
    time.sleep(float(data.get("sleep_s", 1)))
    _note(ctx, event="end", cancelled=ctx.cancelled)
    return "ignored the request"


def isolated_poll(data: dict[str, Any], ctx: Any) -> int:
    """In a child process: polls ctx.cancelled."""
    _note(ctx, event="start", pid=__import__("os").getpid())
    deadline = time.monotonic() + float(data.get("max_s", 20))
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    _note(ctx, event="stop", cancelled=ctx.cancelled)
    ctx.raise_if_cancelled()
    return 0


task_handlers = {
    "traced.work": work,
    "traced.flaky": flaky,
    "traced.sync": sync_work,
    "traced.isolated": isolated(isolated_work),
    "cancel.poll": poll,
    "cancel.wait_async": wait_async,
    "cancel.save_at_shutdown": save_at_shutdown,
    "cancel.ignore": ignore,
    "cancel.isolated_poll": isolated(isolated_poll),
}
