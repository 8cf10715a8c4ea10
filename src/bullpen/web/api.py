"""The JSON API under /api: the dashboard's data and actions for scripts and other tools."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bullpen.errors import ActionError
from bullpen.web import actions, history, queries, search
from bullpen.web.job_links import job_id_of
from bullpen.web.state import WebState, export_service, web_state

Endpoint = Callable[[Request], Awaitable[Response]]


def _json(value: Any, status: int = 200) -> Response:
    # default=str: timestamps and other non-JSON values in records are shown as text.
    body = json.dumps(value, default=str, ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json")


def json_endpoint(endpoint: Callable[[Request, WebState], Awaitable[Any]]) -> Endpoint:
    async def wrapped(request: Request) -> Response:
        try:
            result = await endpoint(request, web_state(request))
        except ActionError as exc:
            return _json({"error": str(exc)}, exc.status)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        return result if isinstance(result, Response) else _json(result)

    return wrapped


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"query parameter {name}={raw!r}: expected an integer") from None


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise ActionError(f"request body is not valid JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise ActionError("request body must be a JSON object")
    return body


async def overview(request: Request, state: WebState) -> Any:
    return await queries.overview(state)


def job_query(request: Request, default_state: str = "failed") -> search.JobQuery:
    """The list's state, task filter, search text (`q`) and sort from the query string."""
    params = request.query_params
    return search.JobQuery(params.get("state", default_state), params.get("task"),
                           params.get("q"), params.get("sort"))


async def jobs(request: Request, state: WebState) -> Any:
    size = min(max(_int_param(request, "size", search.PAGE_SIZE), 1), 500)
    page = await search.list_jobs(state.client, job_query(request),
                                  _int_param(request, "page", 1), size)
    return page.to_dict()


async def bulk(request: Request, state: WebState) -> Any:
    body = await _body(request)
    result = await actions.bulk(state, str(body.get("action", "")),
                                actions.bulk_ids(body.get("ids")))
    return result.to_dict()


async def chart_history(request: Request, state: WebState) -> Any:
    window = history.window_named(request.query_params.get("range"))
    found = await history.history(state.client, window, request.query_params.get("task") or None,
                                  state.registry.names())
    return found.to_dict()


async def job(request: Request, state: WebState) -> Any:
    job_id = job_id_of(request)
    detail = await queries.job_detail(state.client, job_id)
    if detail is None:
        raise ActionError(f"job {job_id!r} not found", 404)
    return detail


async def enqueue(request: Request, state: WebState) -> Any:
    body = await _body(request)
    delay_ms = body.get("delay_ms", 0)
    if not isinstance(delay_ms, int):
        raise ActionError(f"delay_ms={delay_ms!r}: expected an integer")
    queue = body.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise ActionError(f"queue={queue!r}: expected a queue name, or leave it out for the "
                          "task's own queue")
    added = await actions.enqueue_task(state, str(body.get("task", "")),
                                       body.get("data", {}), delay_ms, queue)
    return _json({"id": added.id, "queue": added.queue}, 201)


def _job_action(action: Callable[[WebState, str], Awaitable[None]]) -> Endpoint:
    async def endpoint(request: Request, state: WebState) -> Any:
        job_id = job_id_of(request)
        await action(state, job_id)
        return {"ok": True, "id": job_id}

    return json_endpoint(endpoint)


async def retry_failed(request: Request, state: WebState) -> Any:
    return {"ok": True, "retried": await actions.retry_all_failed(state)}


async def pause(request: Request, state: WebState) -> Any:
    await actions.set_paused(state, True)
    return {"ok": True, "paused": True}


async def resume(request: Request, state: WebState) -> Any:
    await actions.set_paused(state, False)
    return {"ok": True, "paused": False}


async def schedules(request: Request, state: WebState) -> Any:
    return await queries.schedules_view(state)


async def run_schedule(request: Request, state: WebState) -> Any:
    added = await actions.run_schedule_now(state, request.path_params["name"])
    return _json({"id": added.id, "queue": added.queue}, 201)


async def workers(request: Request, state: WebState) -> Any:
    return await queries.workers_view(state.client)


async def exports(request: Request, state: WebState) -> Any:
    return await queries.list_exports(export_service(state))


async def delete_export(request: Request, state: WebState) -> Any:
    await actions.delete_export(export_service(state), request.path_params["export_id"])
    return {"ok": True}


async def export_link(request: Request, state: WebState) -> Any:
    return await actions.fresh_link(export_service(state), request.path_params["export_id"],
                                    lambda token: str(request.url_for("download", token=token)))


def _export_routes() -> list[BaseRoute]:
    post = ["POST"]
    return [
        Route("/api/exports", json_endpoint(exports)),
        Route("/api/exports/{export_id}/delete", json_endpoint(delete_export), methods=post),
        Route("/api/exports/{export_id}/link", json_endpoint(export_link), methods=post),
    ]


def routes(with_exports: bool) -> list[BaseRoute]:
    return [
        *(_export_routes() if with_exports else []),
        Route("/api/overview", json_endpoint(overview)),
        Route("/api/history", json_endpoint(chart_history)),
        Route("/api/jobs", json_endpoint(jobs)),
        Route("/api/jobs", json_endpoint(enqueue), methods=["POST"]),
        Route("/api/jobs/bulk", json_endpoint(bulk), methods=["POST"]),
        Route("/api/jobs/{job_id:path}", json_endpoint(job)),
        Route("/api/jobs/{job_id:path}/retry", _job_action(actions.retry), methods=["POST"]),
        Route("/api/jobs/{job_id:path}/remove", _job_action(actions.remove), methods=["POST"]),
        Route("/api/jobs/{job_id:path}/promote", _job_action(actions.promote), methods=["POST"]),
        Route("/api/jobs/{job_id:path}/cancel", _job_action(actions.cancel), methods=["POST"]),
        Route("/api/queue/retry-failed", json_endpoint(retry_failed), methods=["POST"]),
        Route("/api/queue/pause", json_endpoint(pause), methods=["POST"]),
        Route("/api/queue/resume", json_endpoint(resume), methods=["POST"]),
        Route("/api/schedules", json_endpoint(schedules)),
        Route("/api/schedules/{name}/run", json_endpoint(run_schedule), methods=["POST"]),
        Route("/api/workers", json_endpoint(workers)),
    ]
