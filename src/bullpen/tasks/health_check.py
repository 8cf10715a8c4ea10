"""Task `health.check`: Redis round trip, export directory writable, which worker answered."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bullpen.runtime.context import JobContext


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".health-"):
            return True
    except OSError:
        return False


async def health_check(_data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    started = time.perf_counter()
    await ctx.redis.ping()
    latency_ms = (time.perf_counter() - started) * 1000
    export_dir = ctx.settings.export_path
    writable = _writable(export_dir)
    return {
        "ok": writable,
        "redis_latency_ms": round(latency_ms, 3),
        "export_dir": str(export_dir),
        "export_dir_writable": writable,
        "worker_id": ctx.worker_id,
        "checked_at": datetime.now(UTC).isoformat(),
    }
