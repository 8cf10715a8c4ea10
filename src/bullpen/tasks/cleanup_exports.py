"""Task `exports.cleanup`: the hourly deletion of expired export files (core in exports.cleanup)."""

from __future__ import annotations

from typing import Any

from bullpen.adapter import for_key, redis_client
from bullpen.errors import CleanupLockedError
from bullpen.exports.cleanup import run_cleanup
from bullpen.runtime.context import JobContext


async def cleanup_exports(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    older_than = data.get("older_than_hours") if isinstance(data, dict) else None
    redis, own = ctx.redis, None
    if ctx.queue.name != ctx.settings.worker_default_queue:
        # The cleanup's lock and totals live under the default queue: under Redis Cluster, in
        # that queue's hash slot, which may be on another master than this job's queue.
        redis = own = redis_client(for_key(ctx.queue.connection,
                                           ctx.settings.keyspace.cleanup_lock),
                                   decode_responses=True)
    try:
        report = await run_cleanup(ctx.settings, redis, older_than_hours=older_than)
    except CleanupLockedError as exc:
        return {"skipped": str(exc)}
    finally:
        if own is not None:
            await own.aclose()
    return report.to_dict()
