"""What the dashboard and API may do to the queue; each failure says what and how to fix it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from bullpen.cancellation import request_cancel
from bullpen.errors import ActionError, BullpenError, ExportError, JobStateError
from bullpen.exports.service import ExportService
from bullpen.producer import enqueue, job_options, route
from bullpen.telemetry import telemetry_for
from bullpen.web.state import WebState


async def _job_state(state: WebState, job_id: str) -> str:
    record = await state.client.get_job(job_id)
    if record is None:
        raise ActionError(f"job {job_id!r} not found (it may have been removed or trimmed by "
                          "the keep_completed/keep_failed limits)", 404)
    return record.state or "unknown"


async def retry(state: WebState, job_id: str) -> None:
    current = await _job_state(state, job_id)
    if current not in ("failed", "completed"):
        raise ActionError(f"job {job_id!r} is {current}; only failed or completed jobs can be "
                          "retried", 409)
    await state.client.retry_job(job_id)


async def retry_all_failed(state: WebState) -> int:
    count = (await state.client.get_counts(["failed"]))["failed"]
    await state.client.retry_all_failed()
    return count


async def remove(state: WebState, job_id: str) -> None:
    current = await _job_state(state, job_id)
    if current == "active":
        raise ActionError(f"job {job_id!r} is active (a worker holds its lock); wait for it to "
                          "finish, then remove it", 409)
    try:
        removed = await state.client.remove_job(job_id)
    except JobStateError:
        raise ActionError(f"job {job_id!r} is the next run of a job scheduler; remove or change "
                          "its schedule instead (the Schedules page, or the app's schedules)",
                          409) from None
    if not removed:
        raise ActionError(f"job {job_id!r} was taken by a worker meanwhile; wait for it to "
                          "finish, then remove it", 409)


async def promote(state: WebState, job_id: str) -> None:
    current = await _job_state(state, job_id)
    if current != "delayed":
        raise ActionError(f"job {job_id!r} is {current}; only delayed jobs can be promoted", 409)
    await state.client.promote_job(job_id)


BULK_LIMIT = 1000
BULK_ACTIONS = ("retry", "remove")


@dataclass(slots=True)
class BulkResult:
    action: str
    done: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.refused, "action": self.action, "done": self.done,
                "refused": self.refused}

    def message(self) -> str:
        verb = {"retry": "queued for retry", "remove": "removed"}[self.action]
        said = f"{len(self.done)} job(s) {verb}."
        if self.refused:
            first = next(iter(self.refused.values()))
            said += f" {len(self.refused)} refused, e.g. {first}"
        return said


def check_bulk_action(action: str) -> str:
    if action not in BULK_ACTIONS:
        raise ActionError(f"action={action!r}: expected retry or remove")
    return action


def bulk_ids(raw: object) -> list[str]:
    """The selection: distinct job ids, in order, at most BULK_LIMIT."""
    if not isinstance(raw, list) or not all(isinstance(item, str | int) for item in raw):
        raise ActionError('ids must be a list of job ids, e.g. ["12", "13"]')
    ids = list(dict.fromkeys(str(item) for item in raw if str(item)))
    if not ids:
        raise ActionError("no jobs selected: tick the jobs to act on")
    if len(ids) > BULK_LIMIT:
        raise ActionError(f"{len(ids)} jobs selected; at most {BULK_LIMIT} at once")
    return ids


async def bulk(state: WebState, action: str, ids: list[str]) -> BulkResult:
    """Retry or remove each selected job by the single-job rules; refusals are collected."""
    single: dict[str, Callable[[WebState, str], Awaitable[None]]] = {
        "retry": retry, "remove": remove}
    result = BulkResult(check_bulk_action(action))
    for job_id in ids:
        try:
            await single[action](state, job_id)
            result.done.append(job_id)
        except ActionError as exc:
            result.refused[job_id] = str(exc)
    return result


async def cancel(state: WebState, job_id: str) -> None:
    """Ask the worker running the job to cancel it (it then fails as "cancelled")."""
    if await request_cancel(state.client, job_id):
        return
    current = await _job_state(state, job_id)
    raise ActionError(f"job {job_id!r} is {current}, not running; only active jobs can be "
                      "cancelled (remove a waiting or delayed job instead)", 409)


async def set_paused(state: WebState, paused: bool) -> None:
    await (state.client.pause() if paused else state.client.resume())


def parse_data(text: str) -> Any:
    """The enqueue form's JSON data; blank means {}."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ActionError(f"data is not valid JSON: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}; example: {{\"key\": \"value\"}}") from None


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A job the dashboard or API added, and the queue it went to."""

    id: str
    queue: str


async def enqueue_task(state: WebState, task: str, data: Any, delay_ms: int = 0,
                       queue: str | None = None) -> Enqueued:
    """Enqueue `task` from the registry on `queue`, else on the task's own queue (not the page's:
    a job goes where its workers are); unknown tasks and bad data raise ActionError."""
    if delay_ms < 0:
        raise ActionError(f"delay_ms={delay_ms}: must be 0 or more")
    options = dataclasses.replace(job_options(state.settings), delay_ms=delay_ms)
    try:
        target = route(state.registry, task, state.settings.worker_default_queue, queue)
        job_id = await enqueue(state.on(target).client, state.registry, task, data, options,
                               state.settings.job_max_data_bytes, telemetry_for(state.settings))
    except BullpenError as exc:
        raise ActionError(str(exc)) from exc
    return Enqueued(job_id, target)


async def run_schedule_now(state: WebState, name: str) -> Enqueued:
    """Enqueue a schedule's task with its data now, outside its timetable, on its queue (the
    one shown: declared for it, or where it is registered)."""
    for item in state.schedules:
        if item.name == name:
            return await enqueue_task(state, item.task_name, item.data, queue=state.queue)
    # Looked up in the full list: the port's getScheduler raises on an unknown id.
    registered = {record.id: record for record in await state.client.get_schedulers()}
    record = registered.get(name)
    if record is None:
        known = ", ".join(item.name for item in state.schedules) or "none"
        raise ActionError(f"schedule {name!r} is neither declared nor registered on queue "
                          f"{state.queue!r} (declared there: {known})", 404)
    return await enqueue_task(state, record.task_name, record.data or {}, queue=state.queue)


async def delete_export(exports: ExportService, export_id: str) -> None:
    if not await run_in_threadpool(exports.delete, export_id):
        raise ActionError(f"export {export_id!r} not found (already deleted?)", 404)


async def fresh_link(exports: ExportService, export_id: str, url_for_token: Callable[[str], str]
                     ) -> dict[str, Any]:
    """A new download link for an export; `url_for_token` makes the absolute URL."""
    try:
        issued = await run_in_threadpool(exports.issue_token, export_id)
    except ExportError as exc:
        raise ActionError(str(exc), 404) from exc
    return {"url": url_for_token(issued.token), "token": issued.token,
            "expires_at": issued.expires_at.isoformat()}
