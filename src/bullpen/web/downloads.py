"""GET/HEAD /exports/{token}: streams the export a signed token grants, with byte ranges.

The token is the only input: the export id comes from its verified claims and the store opens
the file by that id, so nothing from the request ever names a file.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import BinaryIO
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bullpen.errors import ExportNotFoundError, TokenExpiredError, TokenInvalidError
from bullpen.exports.service import is_media_type
from bullpen.web.state import export_service, web_state

CHUNK_BYTES = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
FALLBACK_TYPE = "application/octet-stream"
_SAFE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer",
                 "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox"}


def public_page(status: int, title: str, text: str) -> HTMLResponse:
    """A page anyone may be shown: fixed texts only, nothing from the request or the server."""
    body = (f"<!doctype html><meta charset=utf-8><title>{title}</title>"
            f"<body style='font:16px system-ui;margin:3em'><h1>{title}</h1><p>{text}</p>")
    return HTMLResponse(body, status_code=status, headers=_SAFE_HEADERS)


def safe_media_type(value: str) -> str:
    """The stored content type if it is a well-formed header value, else a neutral one: a CR or
    LF in it (metadata written by an older version, or by hand) would abort the download."""
    return value if is_media_type(value) else FALLBACK_TYPE


def content_disposition(filename: str) -> str:
    """attachment with an ASCII fallback name and the exact name in RFC 5987 form."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive for one satisfiable range; None to send everything;
    "unsatisfiable" for a range wholly past the end. An empty file is always sent whole (there
    is no byte range of nothing to name in a Content-Range)."""
    if not header or size == 0:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # several ranges, or a unit other than bytes: RFC 9110 lets us send it all
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        return "unsatisfiable"
    return None if end < start else (start, end)


async def _stream(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await run_in_threadpool(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await run_in_threadpool(handle.read, min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


async def download(request: Request) -> Response:
    service = export_service(web_state(request))
    try:
        export = await run_in_threadpool(service.verify, request.path_params["token"])
    except TokenInvalidError:
        return public_page(404, "Not found", "There is nothing at this address.")
    except TokenExpiredError:
        return public_page(410, "Link expired",
                           "This download link has expired. Ask for a new one.")
    except ExportNotFoundError:
        return public_page(410, "File gone",
                           "This file has been deleted and is no longer available.")
    size = export.size_bytes
    etag = f'"{export.sha256}"'
    headers = {**_SAFE_HEADERS, "Accept-Ranges": "bytes", "ETag": etag,
               "Content-Disposition": content_disposition(export.filename)}
    if_range = request.headers.get("if-range")
    wanted = parse_range(request.headers.get("range") if if_range in (None, etag) else None, size)
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = wanted if isinstance(wanted, tuple) else (0, size - 1)
    status = 206 if isinstance(wanted, tuple) else 200
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers,
                        media_type=safe_media_type(export.content_type))
    try:
        handle = await run_in_threadpool(service.open, export.id)
    except (ExportNotFoundError, FileNotFoundError):
        return public_page(410, "File gone",
                           "This file has been deleted and is no longer available.")
    return StreamingResponse(_stream(handle, start, end - start + 1), status_code=status,
                             headers=headers, media_type=safe_media_type(export.content_type))


def routes() -> list[BaseRoute]:
    return [Route("/exports/{token}", download, methods=["GET", "HEAD"], name="download")]
