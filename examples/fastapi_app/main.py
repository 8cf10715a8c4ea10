"""The FastAPI app: one bullpen Client opened in the lifespan, the dashboard under /admin/jobs.

Run it next to a worker, from examples/:
    BULLPEN_APP=fastapi_app APP_STAFF_PASSWORD=… uvicorn fastapi_app.main:app
"""

from __future__ import annotations

import html
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

import bullpen.web
from bullpen import Client
from fastapi_app.tasks import build_report


def jobs(request: Request) -> Client:
    client: Client = request.app.state.jobs
    return client


def staff_only(request: Request) -> bool | Response:
    """bullpen's dashboard behind the app's own sign-in (here: a session flag)."""
    if request.session.get("staff"):
        return True
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def build_app() -> FastAPI:
    dashboard = bullpen.web.create_app(authenticate=staff_only)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One client for the whole app: every request shares its connections. A mounted app's
        # lifespan is not run by the host, so the dashboard's is entered here too.
        async with Client() as client, dashboard.router.lifespan_context(dashboard):
            app.state.jobs = client
            yield

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SessionMiddleware, secret_key=os.environ["APP_SESSION_SECRET"])

    @app.post("/reports", status_code=202)
    async def start_report(month: str) -> dict[str, str]:
        job = await build_report.enqueue({"month": month})
        return {"job_id": job.id}

    @app.get("/reports/{job_id}")
    async def report_status(job_id: str, request: Request) -> dict[str, Any]:
        info = await jobs(request).get_job(job_id)
        if info is None:
            raise HTTPException(404, f"no job {job_id}")
        return {"state": info.state, "result": info.result, "error": info.failed_reason}

    @app.post("/exports/orders")
    async def export_orders(request: Request, min_total: int = 0) -> dict[str, Any]:
        client = jobs(request)
        job = await client.exports.request("orders.csv", {"min_total": min_total})
        result = await job.wait(timeout=30)
        url = client.exports.download_url(result["export_id"],
                                          base_url=f"{request.base_url}admin/jobs")
        return {"rows": result["rows"], "url": url}

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(next: str = "/admin/jobs/") -> str:
        return ("<form method=post action=/login><input type=hidden name=next "
                f"value='{html.escape(next, quote=True)}'><input name=password type=password>"
                "<button>Sign in</button></form>")

    @app.post("/login")
    async def login(request: Request, password: str = Form(), next: str = Form("/")) -> Response:
        if password != os.environ["APP_STAFF_PASSWORD"]:
            raise HTTPException(401, "wrong password")
        request.session["staff"] = True
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        return RedirectResponse(target, status_code=303)

    app.mount("/admin/jobs", dashboard)
    return app


app = build_app()
