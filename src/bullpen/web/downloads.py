"""GET/HEAD /exports/{token}: streams the export a signed token grants, with byte ranges.

The decision (which file, which status and headers) is `exports.serving`'s, shared with apps
that serve downloads themselves; this module only streams it without blocking the loop.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bullpen.exports.serving import SAFE_HEADERS, Download, prepare_download
from bullpen.web.state import export_service, web_state


def public_page(status: int, title: str, text: str,
                headers: dict[str, str] | None = None) -> HTMLResponse:
    """A page anyone may be shown: fixed texts only, nothing from the request or the server."""
    body = (f"<!doctype html><meta charset=utf-8><title>{title}</title>"
            f"<body style='font:16px system-ui;margin:3em'><h1>{title}</h1><p>{text}</p>")
    return HTMLResponse(body, status_code=status, headers=headers or dict(SAFE_HEADERS))


def _page(answer: Download) -> HTMLResponse:
    return public_page(answer.status, answer.title, answer.message, answer.headers)


async def download(request: Request) -> Response:
    answer = await run_in_threadpool(
        prepare_download, export_service(web_state(request)), request.path_params["token"],
        range_header=request.headers.get("range"), if_range=request.headers.get("if-range"),
        open_file=request.method != "HEAD")
    if answer.status in (404, 410):
        return _page(answer)
    if answer.file is None:
        return Response(status_code=answer.status, headers=answer.headers)
    # A sync iterator: Starlette reads each chunk in its thread pool, never on the loop.
    return StreamingResponse(answer.chunks(), status_code=answer.status, headers=answer.headers)


def routes() -> list[BaseRoute]:
    return [Route("/exports/{token}", download, methods=["GET", "HEAD"], name="download")]
