"""Deletes expired export files (first version; the exports issue replaces it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bullpen import logs
from bullpen.settings import Settings

log = logs.get("cleanup")


@dataclass(slots=True)
class CleanupReport:
    scanned: int = 0
    deleted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_cleanup(settings: Settings, redis: Any, *, dry_run: bool = False,
                      older_than_hours: float | None = None) -> CleanupReport:
    log.info("[exports] Starting expired exports cleanup...")
    report = CleanupReport()
    log.info("[exports] Deleted %d expired export files", report.deleted)
    return report
