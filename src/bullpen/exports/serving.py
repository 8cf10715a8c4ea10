"""Answering a download token: the file with its headers (byte ranges included), or 404/410/416.

`bullpen web` serves downloads with it, and so can an app that serves files itself (Django,
Flask): the token is the only input, the export id comes from its verified claims, and the
store opens the file by that id, so nothing from the request ever names a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import quote

from bullpen.errors import ExportNotFoundError, TokenExpiredError, TokenInvalidError
from bullpen.exports.service import ExportService, is_media_type
from bullpen.exports.store import Export

CHUNK_BYTES = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
SAFE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox"}
FALLBACK_TYPE = "application/octet-stream"
# Fixed texts only: nothing from the token or the file is echoed back.
NOT_FOUND = ("Not found", "There is nothing at this address.")
EXPIRED = ("Link expired", "This download link has expired. Ask for a new one.")
GONE = ("File gone", "This file has been deleted and is no longer available.")


@dataclass(slots=True)
class Download:
    """What to answer a download request with.

    `status` is 200 or 206 with `file` open at `start` (send `length` bytes, or iterate
    `chunks()`, which closes it), 404 (no such link), 410 (expired, or the file is gone) or
    416 (range past the end); `headers` go on the response in every case, `title` and
    `message` are a short fixed text for the error pages.
    """

    status: int
    headers: dict[str, str]
    title: str = ""
    message: str = ""
    export: Export | None = None
    file: BinaryIO | None = None
    start: int = 0
    length: int = 0
    content_type: str = field(default="text/plain; charset=utf-8")

    @property
    def ok(self) -> bool:
        return self.status in (200, 206)

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The bytes to send, read in chunks; closes the file at the end (or when dropped)."""
        if self.file is None:
            return
        handle = self.file
        try:
            handle.seek(self.start)
            remaining = self.length
            while remaining > 0:
                chunk = handle.read(min(chunk_bytes, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


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


def safe_media_type(value: str) -> str:
    """The stored content type if it is a well-formed header value, else a neutral one: a CR or
    LF in it (metadata written by an older version, or by hand) would abort the download."""
    return value if is_media_type(value) else FALLBACK_TYPE


def _refusal(status: int, text: tuple[str, str]) -> Download:
    return Download(status, dict(SAFE_HEADERS), title=text[0], message=text[1])


def prepare_download(service: ExportService, token: str, *, range_header: str | None = None,
                     if_range: str | None = None, open_file: bool = True) -> Download:
    """Verify `token` and describe the answer; the file is opened unless `open_file` is False
    (a HEAD request). Blocking file I/O: from async code, call it in a thread."""
    try:
        export = service.verify(token)
    except TokenInvalidError:
        return _refusal(404, NOT_FOUND)
    except TokenExpiredError:
        return _refusal(410, EXPIRED)
    except ExportNotFoundError:
        return _refusal(410, GONE)
    size = export.size_bytes
    etag = f'"{export.sha256}"'
    headers = {**SAFE_HEADERS, "Accept-Ranges": "bytes", "ETag": etag,
               "Content-Disposition": content_disposition(export.filename)}
    wanted = parse_range(range_header if if_range in (None, etag) else None, size)
    if wanted == "unsatisfiable":
        return Download(416, {**headers, "Content-Range": f"bytes */{size}"}, export=export)
    start, end = wanted if isinstance(wanted, tuple) else (0, size - 1)
    status = 206 if isinstance(wanted, tuple) else 200
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    content_type = safe_media_type(export.content_type)
    headers["Content-Type"] = content_type
    handle = None
    if open_file:
        try:
            handle = service.open(export.id)
        except (ExportNotFoundError, FileNotFoundError):
            return _refusal(410, GONE)
    return Download(status, headers, export=export, file=handle, start=start,
                    length=end - start + 1, content_type=content_type)
