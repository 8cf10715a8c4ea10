"""Task `exports.cleanup`: the hourly deletion of expired export files (core in exports.cleanup)."""

from __future__ import annotations

from typing import Any

from bullpen.errors import CleanupLockedError
from bullpen.exports.cleanup import run_cleanup
from bullpen.runtime.context import JobContext


async def cleanup_exports(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    older_than = data.get("older_than_hours") if isinstance(data, dict) else None
    try:
        report = await run_cleanup(ctx.settings, ctx.redis, older_than_hours=older_than)
    except CleanupLockedError as exc:
        return {"skipped": str(exc)}
    return report.to_dict()
