"""Export cleanup: one core for the hourly `exports.cleanup` task and `bullpen cleanup-exports`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bullpen import logs
from bullpen.errors import CleanupLockedError, ExportError
from bullpen.exports.sweep import (
    CleanupReport,
    ExpiredCallback,
    ProgressCallback,
    SweepPolicy,
    sweep,
)
from bullpen.keyspace import Keyspace
from bullpen.redis_lock import RedisLock
from bullpen.settings import Settings

__all__ = ["CleanupReport", "run_cleanup"]

log = logs.get("cleanup")

LOCK_TTL_MS = 60_000
# Writes in progress keep touching their temp file; one untouched this long was abandoned.
TEMP_GRACE_HOURS = 24.0


def _age_hours(settings: Settings, older_than_hours: Any) -> float:
    if older_than_hours is None:
        return settings.export_max_file_age_hours
    if isinstance(older_than_hours, bool) or not isinstance(older_than_hours, int | float) \
            or not math.isfinite(older_than_hours) or older_than_hours < 0:
        raise ExportError(f"older_than_hours={older_than_hours!r} is not a number of hours >= 0; "
                          "leave it out to use EXPORT_MAX_FILE_AGE_HOURS")
    return float(older_than_hours)


async def run_cleanup(settings: Settings, redis: aioredis.Redis, *, dry_run: bool = False,
                      older_than_hours: float | None = None,
                      on_progress: ProgressCallback | None = None,
                      on_expired: ExpiredCallback | None = None,
                      temp_grace_hours: float = TEMP_GRACE_HOURS) -> CleanupReport:
    """Delete (or list, with dry_run) exports older than the max age, holding the cluster lock.

    Raises CleanupLockedError when another cleanup holds the lock, ExportDirectoryError when
    the export directory is missing or a symlink. Callbacks run in the worker thread.
    """
    hours = _age_hours(settings, older_than_hours)
    lock = RedisLock(redis, settings.keyspace.cleanup_lock, LOCK_TTL_MS)
    if not await lock.acquire():
        remaining_ms = await redis.pttl(lock.key)
        raise CleanupLockedError(f"another export cleanup is running (lock {lock.key!r} held, "
                                 f"{max(remaining_ms, 0)} ms left unless renewed); "
                                 "this run was skipped")
    try:
        log.info("[exports] Starting expired exports cleanup...")
        now_s = time.time()
        policy = SweepPolicy(now_s - hours * 3600, now_s - temp_grace_hours * 3600, dry_run)
        started = time.monotonic()
        report = await _sweep_holding(lock, settings.export_path, policy, on_progress,
                                      on_expired)
        report.duration_ms = int((time.monotonic() - started) * 1000)
        if not dry_run:
            await _record(redis, settings, report)
    finally:
        await lock.release()
    _log_outcome(report)
    return report


async def _sweep_holding(lock: RedisLock, directory: Path, policy: SweepPolicy,
                         on_progress: ProgressCallback | None,
                         on_expired: ExpiredCallback | None) -> CleanupReport:
    """Run the walk in a thread (the event loop stays free) and keep the lock alive meanwhile."""
    stop = threading.Event()
    walk = asyncio.ensure_future(asyncio.to_thread(
        sweep, directory, policy, on_progress=on_progress, on_expired=on_expired, stop=stop))
    try:
        while True:
            done, _ = await asyncio.wait({walk}, timeout=LOCK_TTL_MS / 3000)
            if done:
                return walk.result()
            if not await lock.extend():
                log.warning("[exports] Cleanup lock expired mid-run; another cleanup may overlap "
                            "(harmless: a file already gone is skipped)")
    except asyncio.CancelledError:
        stop.set()  # the thread finishes its current entry and returns
        with contextlib.suppress(Exception):
            await asyncio.shield(walk)
        raise


async def _record(redis: aioredis.Redis, settings: Settings, report: CleanupReport) -> None:
    """Counters and the last report, for the web dashboard's /metrics."""
    keys = settings.keyspace
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(keys.cleanup_stats, "deleted_files", report.deleted)
    pipe.hincrby(keys.cleanup_stats, "deleted_bytes", report.bytes_freed)
    pipe.set(keys.cleanup_last,
             json.dumps(report.to_dict() | {"finished_at_ms": int(time.time() * 1000)}))
    await pipe.execute()


async def read_cleanup_totals(redis: aioredis.Redis, keys: Keyspace
                              ) -> tuple[dict[str, int], dict[str, Any] | None]:
    """Files and bytes deleted by every cleanup so far, and the last cleanup's report."""
    totals, last = await asyncio.gather(redis.hgetall(keys.cleanup_stats),
                                        redis.get(keys.cleanup_last))
    return ({str(name): int(value) for name, value in totals.items()},
            json.loads(last) if last else None)


def _log_outcome(report: CleanupReport) -> None:
    if report.dry_run:
        log.info("[exports] Dry run: %d expired export files would be deleted", report.deleted)
    else:
        log.info("[exports] Deleted %d expired export files", report.deleted)
    if report.skipped:
        log.info("[exports] Skipped: %s",
                 ", ".join(f"{count} {reason}" for reason, count in report.skipped.items()))
    if report.error_count:
        first = report.errors[0] if report.errors else {}
        log.warning("[exports] %d entries could not be handled (first: %s: %s)",
                    report.error_count, first.get("name"), first.get("error"))
