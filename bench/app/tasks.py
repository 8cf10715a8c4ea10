"""Benchmark tasks: `bench.noop` does nothing; `bench.lateness` records start minus its due time."""

from __future__ import annotations

import time
from typing import Any

from bench.app import rows
from bullpen import JobContext
from bullpen.exports.exporters import exporters
from bullpen.runtime.stats import scheduled_at_ms

exporters[rows.SyntheticRows.name] = rows.SyntheticRows()


async def noop() -> None:
    return None


async def lateness(data: Any, ctx: JobContext) -> None:
    """Lateness of a scheduler tick (its id carries the due ms) or of a job stamped `due_ms`."""
    started_ms = time.time() * 1000
    due = scheduled_at_ms(ctx.job)
    if due is None and isinstance(data, dict):
        due = data.get("due_ms")
    if due is not None:
        key = f"bench:{ctx.settings.worker_default_queue}:lateness"
        await ctx.redis.rpush(key, f"{started_ms - due:.3f}")


task_handlers = {"bench.noop": noop, "bench.lateness": lateness}
