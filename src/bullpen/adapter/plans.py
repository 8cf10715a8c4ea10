"""Per-worker script arguments, packed once: the fetch options per lock token, and per job
options (as stored) the finish options for completed and failed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bullpen.adapter.protocol import pack
from bullpen.errors import JobDecodeError

# Tokens and option variants seen by a long-running worker; past this the cache starts over.
_MAX_CACHED = 512


@dataclass(frozen=True, slots=True)
class JobPlan:
    """A job's decoded options and its two packed finish-option maps."""

    opts: dict[str, Any]
    completed_opts: bytes
    failed_opts: bytes


def keep_jobs(value: Any, fallback: int | None) -> dict[str, Any]:
    """Node's getKeepJobs: removeOnComplete/removeOnFail as the finish script reads them."""
    if value is None:
        return {"count": fallback} if fallback is not None else {"count": -1}
    if isinstance(value, bool):
        return {"count": 0 if value else -1}
    if isinstance(value, dict):
        return value
    if isinstance(value, int | float):
        return {"count": int(value)}
    return {"count": -1}


class Plans:
    """Caches what the worker sends with every fetch and finish."""

    def __init__(self, name: str | None, limiter: dict[str, int] | None, lock_duration_ms: int,
                 metrics_max_data_points: int, keep_completed: int | None,
                 keep_failed: int | None) -> None:
        self._name = name
        self._limiter = limiter
        self._lock_duration_ms = lock_duration_ms
        # The finish script tests `maxMetricsSize ~= ""`: "" turns metrics off.
        self._metrics: int | str = metrics_max_data_points or ""
        self._keep = {"completed": keep_completed, "failed": keep_failed}
        self._fetch: dict[str, bytes] = {}
        self._plans: dict[tuple[str, bytes | None], JobPlan] = {}

    def fetch_opts(self, token: str) -> bytes:
        """moveToActive's packed options; finishing and backing off fetch with the same."""
        packed = self._fetch.get(token)
        if packed is None:
            if len(self._fetch) >= _MAX_CACHED:
                self._fetch.clear()
            packed = self._fetch[token] = pack({
                "token": token, "lockDuration": self._lock_duration_ms,
                "limiter": self._limiter, "name": self._name})
        return packed

    def plan(self, token: str, job_id: str, raw_opts: bytes | None) -> JobPlan:
        """The plan for a job's stored options; JobDecodeError when they are unreadable."""
        key = (token, raw_opts)
        found = self._plans.get(key)
        if found is None:
            if len(self._plans) >= _MAX_CACHED:
                self._plans.clear()
            found = self._plans[key] = self.plan_for(token, _decode_opts(job_id, raw_opts))
        return found

    def plan_for(self, token: str, opts: dict[str, Any]) -> JobPlan:
        return JobPlan(opts, self._finish_opts(token, opts, "completed"),
                       self._finish_opts(token, opts, "failed"))

    def _finish_opts(self, token: str, opts: dict[str, Any], target: str) -> bytes:
        remove = opts.get("removeOnComplete" if target == "completed" else "removeOnFail")
        return pack({
            "token": token, "name": self._name, "keepJobs": keep_jobs(remove, self._keep[target]),
            "limiter": self._limiter, "lockDuration": self._lock_duration_ms,
            "attempts": opts.get("attempts") or 0, "maxMetricsSize": self._metrics,
            "fpof": bool(opts.get("fpof")), "cpof": bool(opts.get("cpof")),
            "idof": bool(opts.get("idof")), "rdof": bool(opts.get("rdof")),
        })


def _decode_opts(job_id: str, raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        opts = json.loads(raw)
    except (ValueError, RecursionError):
        opts = None
    if not isinstance(opts, dict):
        raise JobDecodeError(f"job {job_id}: its options are not a JSON object; it was written "
                             "by a producer bullpen cannot read: fix the producer")
    return opts
