"""The dashboard's POST forms (actions with a one-shot message, then a redirect) and sign-in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bullpen.errors import ActionError
from bullpen.web import actions
from bullpen.web.job_links import job_id_of, job_ref
from bullpen.web.middleware import client_address, too_many_failures
from bullpen.web.paths import url
from bullpen.web.queue_scope import path_safe, queue_root
from bullpen.web.security import SESSION_COOKIE, Guard
from bullpen.web.sessions import SessionStore
from bullpen.web.state import WebState, export_service, web_state
from bullpen.web.templating import render, set_flash
from bullpen.web.throttle import FailureThrottle


class Absolute(str):
    """A redirect target that already holds its root (another queue's page)."""

    __slots__ = ()


Action = Callable[[Request, WebState], Awaitable[tuple[str, str | None]]]


def local_path(target: str, default: str) -> str:
    # Only same-site paths: a `next` like //evil.example would be an open redirect.
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def form_action(action: Action, default_next: str = "/"
                ) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an action: redirect (303) to the form's `next`, or to where the action points."""

    async def endpoint(request: Request) -> Response:
        form = await request.form()
        back = local_path(str(form.get("next", "")), url(request, default_next))
        try:
            message, target = await action(request, web_state(request))
            ok = True
        except ActionError as exc:
            message, target, ok = str(exc), None, False
        if target and not isinstance(target, Absolute):
            target = url(request, target)
        response = RedirectResponse(target or back, status_code=303)
        set_flash(response, message, ok)
        return response

    return endpoint


async def _retry(request: Request, state: WebState) -> tuple[str, str | None]:
    job_id = job_id_of(request)
    await actions.retry(state, job_id)
    return f"Job {job_id} queued for retry.", None


async def _remove(request: Request, state: WebState) -> tuple[str, str | None]:
    job_id = job_id_of(request)
    await actions.remove(state, job_id)
    return f"Job {job_id} removed.", "/"


async def _promote(request: Request, state: WebState) -> tuple[str, str | None]:
    job_id = job_id_of(request)
    await actions.promote(state, job_id)
    return f"Job {job_id} promoted: it runs now.", None


async def _cancel(request: Request, state: WebState) -> tuple[str, str | None]:
    job_id = job_id_of(request)
    await actions.cancel(state, job_id)
    return (f"Job {job_id}: cancel requested; it fails as cancelled once its handler stops.",
            None)


async def _retry_all(request: Request, state: WebState) -> tuple[str, str | None]:
    count = await actions.retry_all_failed(state)
    return f"{count} failed job(s) queued for retry.", None


async def _pause(request: Request, state: WebState) -> tuple[str, str | None]:
    await actions.set_paused(state, True)
    return "Queue paused: workers take no new jobs until resumed.", None


async def _resume(request: Request, state: WebState) -> tuple[str, str | None]:
    await actions.set_paused(state, False)
    return "Queue resumed.", None


CONFIRM_SHOWN = 50


async def bulk_form(request: Request) -> Response:
    """Retry or remove the ticked jobs: first a page to confirm, then (confirmed=yes) the act."""
    form = await request.form()
    back = local_path(str(form.get("next", "")), url(request, "/jobs/failed"))
    state = web_state(request)
    try:
        action = actions.check_bulk_action(str(form.get("action", "")))
        ids = actions.bulk_ids([str(value) for value in form.getlist("ids")])
    except ActionError as exc:
        response = RedirectResponse(back, status_code=303)
        set_flash(response, str(exc), ok=False)
        return response
    if form.get("confirmed") != "yes":
        shown = [await state.client.get_job(job_id) for job_id in ids[:CONFIRM_SHOWN]]
        return render(request, "confirm.html", action=action, ids=ids, next=back,
                      shown=[(job_id, job) for job_id, job in zip(ids, shown, strict=False)])
    result = await actions.bulk(state, action, ids)
    response = RedirectResponse(back, status_code=303)
    set_flash(response, result.message(), ok=not result.refused)
    return response


async def _enqueue(request: Request, state: WebState) -> tuple[str, str | None]:
    form = await request.form()
    task = str(form.get("task", ""))
    data = actions.parse_data(str(form.get("data", "")))
    delay_raw = str(form.get("delay_s", "") or "0")
    try:
        delay_ms = int(float(delay_raw) * 1000)
    except ValueError:
        raise ActionError(f"delay {delay_raw!r}: expected a number of seconds") from None
    added = await actions.enqueue_task(state, task, data, delay_ms)
    return f"Enqueued {task} as job {added.id}{_on(state, added)}.", _job_page(request, added)


async def _run_schedule(request: Request, state: WebState) -> tuple[str, str | None]:
    name = request.path_params["name"]
    added = await actions.run_schedule_now(state, name)
    return (f"Schedule {name} run now as job {added.id}{_on(state, added)}.",
            _job_page(request, added))


def _on(state: WebState, added: actions.Enqueued) -> str:
    return "" if added.queue == state.settings.worker_default_queue else f" on queue {added.queue}"


def _job_page(request: Request, added: actions.Enqueued) -> Absolute:
    """The new job's page, on its own queue (which need not be the page's)."""
    page = f"/job/{job_ref(added.id)}"
    if added.queue == web_state(request).settings.worker_default_queue:
        return Absolute(queue_root(request.scope, None) + page)
    if path_safe(added.queue):
        return Absolute(queue_root(request.scope, added.queue) + page)
    return Absolute(f"{queue_root(request.scope, None)}{page}?{urlencode({'queue': added.queue})}")


async def _delete_export(request: Request, state: WebState) -> tuple[str, str | None]:
    export_id = request.path_params["export_id"]
    await actions.delete_export(export_service(state), export_id)
    return f"Export {export_id} deleted; its download links now answer 410 Gone.", None


async def _export_link(request: Request, state: WebState) -> tuple[str, str | None]:
    link = await actions.fresh_link(export_service(state), request.path_params["export_id"],
                                    lambda token: str(request.url_for("download", token=token)))
    return f"Fresh link, valid until {link['expires_at']}: {link['url']}", None


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


async def login_form(request: Request) -> Response:
    return render(request, "login.html",
                  next=local_path(request.query_params.get("next", ""), url(request, "/")),
                  error=None, token_auth=_guard(request).uses_token)


async def login(request: Request) -> Response:
    form = await request.form()
    target = local_path(str(form.get("next", "")), url(request, "/"))
    guard = _guard(request)
    throttle: FailureThrottle = request.app.state.throttle
    client = client_address(request.scope)
    wait_s = throttle.retry_after_s(client)
    if wait_s:
        return too_many_failures(wait_s, as_json=False)
    if not guard.check_token(str(form.get("token", ""))):
        throttle.failed(client)
        return render(request, "login.html", status=401, next=target,
                      error="That token is not WEB_AUTH_TOKEN.", token_auth=guard.uses_token)
    sessions: SessionStore = request.app.state.sessions
    response = RedirectResponse(target, status_code=303)
    # Secure is added by the security middleware (WEB_COOKIE_SECURE or the request's scheme).
    response.set_cookie(SESSION_COOKIE, await sessions.create(), max_age=sessions.max_age_s,
                        httponly=True, samesite="lax")
    return response


async def logout(request: Request) -> Response:
    sessions: SessionStore = request.app.state.sessions
    await sessions.revoke(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse(url(request, "/login"), status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def routes(with_exports: bool) -> list[BaseRoute]:
    post = ["POST"]
    exports = [
        Route("/exports/{export_id}/delete", form_action(_delete_export, "/exports"),
              methods=post),
        Route("/exports/{export_id}/link", form_action(_export_link, "/exports"), methods=post),
    ]
    return [
        *(exports if with_exports else []),
        Route("/jobs/bulk", bulk_form, methods=post),
        Route("/job/{job_id:path}/retry", form_action(_retry), methods=post),
        Route("/job/{job_id:path}/remove", form_action(_remove), methods=post),
        Route("/job/{job_id:path}/promote", form_action(_promote), methods=post),
        Route("/job/{job_id:path}/cancel", form_action(_cancel), methods=post),
        Route("/queue/retry-failed", form_action(_retry_all, "/jobs/failed"), methods=post),
        Route("/queue/pause", form_action(_pause), methods=post),
        Route("/queue/resume", form_action(_resume), methods=post),
        Route("/enqueue", form_action(_enqueue), methods=post),
        Route("/schedules/{name}/run", form_action(_run_schedule, "/schedules"), methods=post),
        Route("/login", login_form),
        Route("/login", login, methods=post),
        Route("/logout", logout, methods=post),
    ]
