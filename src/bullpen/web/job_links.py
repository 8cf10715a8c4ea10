"""Job ids in dashboard and API paths: any id Redis holds, quoted so that it stays one id.

Every character is percent-encoded, `/` included, so `../job/victim1` cannot climb out of its
place in the path. A browser still resolves the segments `.` and `..` (even encoded), so those
ids, and ids starting with `~`, get a `~` in front, which the routes take off again.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

_MARK = "~"


def job_ref(job_id: object) -> str:
    """The path segment for a job id: `/job/{job_ref(id)}`."""
    text = str(job_id)
    quoted = quote(text, safe="")
    if text in ("", ".", "..") or text.startswith(_MARK):
        return _MARK + quoted
    return quoted


def job_id_of(request: Request) -> str:
    """The job id a route was called with (the `{job_id:path}` parameter, decoded)."""
    raw = str(request.path_params["job_id"])
    return raw[len(_MARK):] if raw.startswith(_MARK) else raw
