"""The exports page and its API: files with size, age and expiry; delete; a fresh download link."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bullpen.errors import ActionError, ExportError
from bullpen.web.api import json_endpoint
from bullpen.web.forms import form_action
from bullpen.web.state import WebState, web_state
from bullpen.web.templating import render

LIST_LIMIT = 500


def export_row(export: Any) -> dict[str, Any]:
    now_s = time.time()
    return {**export.to_dict(), "age_s": now_s - export.created_at.timestamp(),
            "expires_in_s": export.expires_at.timestamp() - now_s}


async def list_exports(state: WebState) -> list[dict[str, Any]]:
    exports = await run_in_threadpool(lambda: state.exports.list(limit=LIST_LIMIT))
    return [export_row(export) for export in exports]


async def delete_export(state: WebState, export_id: str) -> None:
    if not await run_in_threadpool(state.exports.delete, export_id):
        raise ActionError(f"export {export_id!r} not found (already deleted?)", 404)


async def fresh_link(request: Request, state: WebState, export_id: str) -> dict[str, Any]:
    try:
        issued = await run_in_threadpool(state.exports.issue_token, export_id)
    except ExportError as exc:
        raise ActionError(str(exc), 404) from exc
    return {"url": str(request.url_for("download", token=issued.token)),
            "token": issued.token, "expires_at": issued.expires_at.isoformat()}


async def exports_page(request: Request) -> Response:
    rows = await list_exports(web_state(request))
    return render(request, "exports.html", rows=rows, limit=LIST_LIMIT)


async def _delete_form(request: Request, state: WebState) -> tuple[str, str | None]:
    export_id = request.path_params["export_id"]
    await delete_export(state, export_id)
    return f"Export {export_id} deleted; its download links now answer 410 Gone.", None


async def _link_form(request: Request, state: WebState) -> tuple[str, str | None]:
    link = await fresh_link(request, state, request.path_params["export_id"])
    return f"Fresh link, valid until {link['expires_at']}: {link['url']}", None


async def _api_list(request: Request, state: WebState) -> Any:
    return await list_exports(state)


async def _api_delete(request: Request, state: WebState) -> Any:
    await delete_export(state, request.path_params["export_id"])
    return {"ok": True}


async def _api_link(request: Request, state: WebState) -> Any:
    return await fresh_link(request, state, request.path_params["export_id"])


def routes() -> list[BaseRoute]:
    post = ["POST"]
    return [
        Route("/exports", exports_page),
        Route("/exports/{export_id}/delete", form_action(_delete_form, "/exports"), methods=post),
        Route("/exports/{export_id}/link", form_action(_link_form, "/exports"), methods=post),
        Route("/api/exports", json_endpoint(_api_list)),
        Route("/api/exports/{export_id}/delete", json_endpoint(_api_delete), methods=post),
        Route("/api/exports/{export_id}/link", json_endpoint(_api_link), methods=post),
    ]
