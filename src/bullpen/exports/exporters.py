"""Exporters: named row sources for the `exports.create` task, kept in a registry like tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bullpen.adapter import JOB_STATES, JobRecord, QueueClient
from bullpen.errors import ExporterError
from bullpen.settings import Settings

Page = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ExportSource:
    """What an exporter may read from: the settings and a client for the worker's queue."""

    settings: Settings
    client: QueueClient


class Exporter(Protocol):
    """Validates its params, then yields rows a page at a time (never everything at once)."""

    name: str
    columns: tuple[str, ...]
    default_filename: str

    def parse_params(self, params: Mapping[str, Any]) -> Any: ...

    def pages(self, source: ExportSource, params: Any) -> AsyncIterator[Page]: ...


class JobHistoryParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    states: list[str] = Field(default_factory=lambda: ["completed", "failed"], min_length=1)
    limit: int | None = Field(None, ge=1, description="at most this many rows")
    page_size: int = Field(500, ge=1, le=5000)


def _iso(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat() if ms else ""


class JobHistoryExporter:
    """The queue's own jobs: name, state, attempts, duration, timestamps, failure reason.

    Job data and results are left out on purpose: they may hold personal data.
    Pages are read by rank while the queue keeps moving, so a job finishing mid-export
    may be listed twice or not at all; fine for an audit snapshot.
    """

    name = "jobs.history"
    default_filename = "job-history"
    columns: tuple[str, ...] = (
        "id", "name", "state", "attempts_made", "attempts_allowed", "duration_ms",
        "created_at", "processed_at", "finished_at", "failed_reason",
    )

    def parse_params(self, params: Mapping[str, Any]) -> JobHistoryParams:
        parsed = JobHistoryParams.model_validate(dict(params))
        unknown = [state for state in parsed.states if state not in JOB_STATES]
        if unknown:
            raise ExporterError(f"jobs.history: unknown states {unknown} "
                                      f"(expected some of {', '.join(JOB_STATES)})")
        return parsed

    async def pages(self, source: ExportSource, params: JobHistoryParams) -> AsyncIterator[Page]:
        remaining = params.limit
        for state in params.states:
            start = 0
            while remaining is None or remaining > 0:
                size = params.page_size if remaining is None else min(params.page_size, remaining)
                records = await source.client.get_jobs(state, start, start + size - 1)
                if not records:
                    break
                if remaining is not None:
                    remaining -= len(records)
                yield [self._row(record) for record in records]
                start += size

    @staticmethod
    def _row(job: JobRecord) -> dict[str, Any]:
        return {
            "id": job.id, "name": job.name, "state": job.state,
            "attempts_made": job.attempts_made, "attempts_allowed": job.attempts_allowed,
            "duration_ms": job.duration_ms, "created_at": _iso(job.timestamp_ms),
            "processed_at": _iso(job.processed_on_ms), "finished_at": _iso(job.finished_on_ms),
            "failed_reason": job.failed_reason or "",
        }


exporters: dict[str, Exporter] = {
    JobHistoryExporter.name: JobHistoryExporter(),
}


def get_exporter(name: Any, registry: Mapping[str, Exporter] | None = None) -> Exporter:
    """The registered exporter (bullpen's own unless `registry` is given), or ExporterError
    naming the ones that exist."""
    registry = exporters if registry is None else registry
    exporter = registry.get(name) if isinstance(name, str) else None
    if exporter is None:
        known = ", ".join(sorted(registry))
        raise ExporterError(f"unknown exporter {name!r} (known: {known})")
    return exporter


def parse_params(exporter: Exporter, params: Any) -> Any:
    """Validated params; pydantic's messages flattened into one ExporterError."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ExporterError(f"{exporter.name}: params must be an object, got {params!r:.80}")
    try:
        return exporter.parse_params(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'params'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ExporterError(f"{exporter.name}: invalid params: {problems}") from None
