"""Files the dashboard serves itself, so it works with no internet (no CDN): its one script."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES = {"live.js": "text/javascript; charset=utf-8"}
_CONTENT = {name: (STATIC_DIR / name).read_bytes() for name in MEDIA_TYPES}


async def static_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _CONTENT:
        return Response("not found", 404, media_type="text/plain")
    # Pages ask for ?v=<bullpen version>, so a cached copy never outlives an upgrade.
    return Response(_CONTENT[name], media_type=MEDIA_TYPES[name],
                    headers={"cache-control": "private, max-age=86400"})


def routes() -> list[BaseRoute]:
    return [Route("/static/{name}", static_file)]
