"""Probes: /healthz (the process is up) and /readyz (Redis, eviction, and the workers and
schedules of every known queue)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bullpen.exports.identity import FIX, ensure_identity, mismatch_summary, workers_elsewhere
from bullpen.reconcile import schedule_status
from bullpen.redis_tls import describe
from bullpen.runtime import heartbeat
from bullpen.web.state import WebState, web_state

T = TypeVar("T")
CHECK_TIMEOUT_S = 2.0


def _check(ok: bool, reason: str) -> dict[str, Any]:
    return {"ok": ok, "reason": reason}


async def _bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, CHECK_TIMEOUT_S)


async def _eviction_policy(state: WebState) -> dict[str, Any]:
    # INFO, unlike CONFIG GET, is allowed on managed Redis services.
    info: dict[str, Any] = await _bounded(state.client.redis.info("memory"))
    policy = str(info.get("maxmemory_policy", "unknown"))
    if policy == "noeviction":
        return _check(True, "maxmemory-policy is noeviction")
    return _check(False, f"maxmemory-policy is {policy}: Redis may evict queue keys and lose "
                         "jobs; set `maxmemory-policy noeviction`")


async def _queue_workers(state: WebState) -> dict[str, Any]:
    live = await _bounded(heartbeat.live_workers(state.client))
    others = f"{len(live.others)} other BullMQ worker(s)" if live.others else ""
    if live.bullpen:
        freshest = min(info.age_s for info in live.bullpen)
        return _check(True, f"{len(live.bullpen)} worker(s); freshest heartbeat "
                            f"{freshest:.1f} s ago" + (f"; {others}" if others else ""))
    if others:
        return _check(True, f"no bullpen worker heartbeat; {others} on the queue")
    flag = "" if state.queue == state.settings.worker_default_queue else f" --queue {state.queue}"
    return _check(False, f"no worker heartbeat: start one with `bullpen worker{flag}`")


async def _workers(state: WebState) -> dict[str, Any]:
    """Every known queue has a live worker (one queue: the reason as it always was)."""
    views = state.all_queues
    results = await asyncio.gather(*(_queue_workers(view) for view in views))
    if len(views) == 1:
        return results[0]
    return _check(all(result["ok"] for result in results), "; ".join(
        f"queue {view.queue}: {result['reason']}" for view, result in zip(views, results,
                                                                          strict=True)))


async def _schedules(state: WebState) -> dict[str, Any]:
    views = state.all_queues
    statuses = await _bounded(asyncio.gather(*(schedule_status(view.client, view.schedules)
                                               for view in views)))
    missing = [status.name + (f" (queue {view.queue})" if len(views) > 1 else "")
               for view, found in zip(views, statuses, strict=True)
               for status in found if status.status == "missing"]
    if missing:
        return _check(False, f"declared but not registered: {', '.join(missing)} (a running "
                             "worker registers them at start)")
    declared = sum(len(view.schedules) for view in views)
    return _check(True, f"all {declared} declared schedule(s) registered")


async def _export_dir(state: WebState) -> dict[str, Any]:
    """Every worker that publishes its export directory writes to this web's (by marker id)."""
    own_id = await asyncio.to_thread(ensure_identity, state.settings.export_path.absolute())
    found = await _bounded(asyncio.gather(*(heartbeat.alive_workers(view.client)
                                            for view in state.all_queues)))
    elsewhere = workers_elsewhere(own_id, [info for infos in found for info in infos])
    if elsewhere:
        return _check(False, f"{mismatch_summary(own_id, elsewhere, 'web')}; {FIX}")
    return _check(True, "the live workers write exports to this web's export directory")


async def readiness(state: WebState) -> dict[str, dict[str, Any]]:
    # Readiness is about the whole deployment: every known queue, whatever the path names.
    state = state.on(state.settings.worker_default_queue)
    """Each check with its reason; the later ones are skipped when Redis does not answer."""
    try:
        await _bounded(state.client.ping())
    except Exception as exc:
        reason = f"Redis unreachable ({describe(exc, state.client_url)})"
        skipped = _check(False, "skipped: Redis unreachable")
        return {"redis": _check(False, reason), "maxmemory_policy": skipped,
                "worker_heartbeat": skipped, "schedules_registered": skipped,
                "export_dir": skipped}
    checks = {"redis": _check(True, "PING answered")}
    names = ("maxmemory_policy", "worker_heartbeat", "schedules_registered", "export_dir")
    results = await asyncio.gather(_eviction_policy(state), _workers(state), _schedules(state),
                                   _export_dir(state), return_exceptions=True)
    for name, result in zip(names, results, strict=True):
        checks[name] = (result if isinstance(result, dict)
                        else _check(False, f"check failed: {type(result).__name__}: {result}"))
    return checks


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    checks = await readiness(web_state(request))
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


def routes() -> list[BaseRoute]:
    return [Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"])]
