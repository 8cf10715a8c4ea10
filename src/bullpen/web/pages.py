"""The dashboard's pages: overview, job lists and detail, schedules, workers and exports."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bullpen.adapter import JOB_STATES
from bullpen.web import history, queries, search
from bullpen.web.job_links import job_id_of
from bullpen.web.state import export_service, web_state
from bullpen.web.templating import render

REFRESH_S = 5
FINISHED_STATES = ("completed", "failed")


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def _bad_request(request: Request, message: str) -> Response:
    return render(request, "error.html", status=400, title="Bad request", message=message)


async def overview(request: Request) -> Response:
    state = web_state(request)
    try:
        window = history.window_named(request.query_params.get("range"))
    except ValueError as exc:
        return _bad_request(request, str(exc))
    task = request.query_params.get("task") or None
    data, charts = await asyncio.gather(
        queries.overview(state),
        history.history(state.client, window, task, state.registry.names()))
    return render(request, "overview.html", refresh_s=REFRESH_S, data=data,
                  states=JOB_STATES, history=charts, windows=history.WINDOWS)


async def job_list(request: Request) -> Response:
    state_name = request.path_params["state"]
    if state_name not in JOB_STATES:
        return render(request, "error.html", status=404, title="Not found",
                      message=f"No job state {state_name!r}; states are "
                              f"{', '.join(JOB_STATES)}.")
    params = request.query_params
    try:
        query = search.JobQuery(state_name, params.get("task"), params.get("q"),
                                params.get("sort"))
    except ValueError as exc:
        return _bad_request(request, str(exc))
    state = web_state(request)
    page = await search.list_jobs(state.client, query, _page_number(request))
    return render(request, "jobs.html", refresh_s=REFRESH_S, page=page, states=JOB_STATES,
                  tasks=state.registry.names())


async def job_detail(request: Request) -> Response:
    job_id = job_id_of(request)
    job = await queries.job_detail(web_state(request).client, job_id)
    if job is None:
        return render(request, "error.html", status=404, title="Not found",
                      message=f"Job {job_id!r} not found: it may have been removed, or trimmed "
                              "by the keep-completed/keep-failed limits.")
    refresh = None if job["state"] in FINISHED_STATES else REFRESH_S
    return render(request, "job.html", refresh_s=refresh, job=job)


async def schedules(request: Request) -> Response:
    rows = await queries.schedules_view(web_state(request))
    return render(request, "schedules.html", refresh_s=REFRESH_S * 2, rows=rows)


async def workers(request: Request) -> Response:
    rows = await queries.workers_view(web_state(request).client)
    return render(request, "workers.html", refresh_s=REFRESH_S, rows=rows)


async def exports_page(request: Request) -> Response:
    rows = await queries.list_exports(export_service(web_state(request)))
    return render(request, "exports.html", rows=rows, limit=queries.EXPORTS_LIST_LIMIT)


async def enqueue_form(request: Request) -> Response:
    state = web_state(request)
    return render(request, "enqueue.html", tasks=state.registry.names(),
                  max_bytes=state.settings.job_max_data_bytes)


def routes(with_exports: bool) -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Route("/", overview),
        Route("/jobs/{state}", job_list),
        Route("/job/{job_id:path}", job_detail),
        Route("/schedules", schedules),
        Route("/workers", workers),
        Route("/enqueue", enqueue_form),
    ]
    return [*found, Route("/exports", exports_page)] if with_exports else found
