"""The worker side of BullMQ's protocol: each script call with its keys and arguments as Node
BullMQ 6.7.0 sends them, on the worker's command connection."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import msgpack
from bullmq.queue_keys import QueueKeys

from bullpen.adapter.scripts import ScriptRegistry
from bullpen.errors import JobStateError, LockLostError

_REFUSALS = {
    -1: "Missing key for job {id}. {command}",
    -2: "Missing lock for job {id}. {command}",
    -3: "Job {id} is not in the active state. {command}",
    -4: "Job {id} has pending dependencies. {command}",
    -6: "Lock mismatch for job {id}. Cmd {command} from active",
    -8: "Job {id} belongs to a job scheduler and cannot be removed directly. {command}",
    -9: "Cannot complete job {id} because it has at least one failed child. {command}",
}


def refusal(code: int, job_id: str, command: str) -> JobStateError:
    """The error for a script's negative reply, worded as Node BullMQ words it."""
    text = _REFUSALS.get(code, "Unknown code {code} error for {id}. {command}")
    message = text.format(id=job_id, command=command, code=code)
    return LockLostError(message, code) if code in (-2, -6) else JobStateError(message, code)


@dataclass(frozen=True, slots=True)
class NextJob:
    """A fetch's outcome: a job (its hash as a flat list) or none, plus the limiter's wait
    (ms from now) and the next delayed job's due time (epoch ms)."""

    fields: list[bytes] | None
    job_id: str | None
    limit_ms: int
    delay_until_ms: int


NO_JOB = NextJob(None, None, 0, 0)


def next_job(reply: Any) -> NextJob:
    """Read moveToActive's 4-tuple (also returned by a finish that fetched); 0 means none."""
    if not isinstance(reply, list):
        return NO_JOB
    fields, job_id, limit_ms, delay_until_ms = reply
    if not fields:
        return NextJob(None, None, int(limit_ms or 0), int(delay_until_ms or 0))
    return NextJob(fields, job_id.decode(), 0, 0)


def now_ms() -> int:
    return int(time.time() * 1000)


def pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


class QueueCommands:
    """Script calls for one queue; keys are built once, each call adds only what varies."""

    def __init__(self, client: Any, registry: ScriptRegistry, prefix: str, queue: str) -> None:
        self.client = client
        self.registry = registry
        self.keys = QueueKeys(prefix).getKeys(queue)
        self.job_key_prefix = self.keys[""]
        keys = self.keys
        self._active_keys = tuple(keys[name] for name in (
            "wait", "active", "prioritized", "events", "stalled", "limiter", "delayed", "paused",
            "meta", "pc", "marker"))
        self._finish_keys = {target: (*self._active_keys[:10], keys[target]) for target in
                             ("completed", "failed")}
        self._metrics_keys = {target: f"{self.job_key_prefix}metrics:{target}"
                              for target in ("completed", "failed")}
        self._delayed_keys = tuple(keys[name] for name in (
            "marker", "active", "prioritized", "delayed"))
        self._delayed_tail = tuple(keys[name] for name in (
            "events", "meta", "stalled", "wait", "limiter", "pc"))
        self._retry_keys = tuple(keys[name] for name in ("active", "wait", "paused"))
        self._retry_tail = tuple(keys[name] for name in (
            "meta", "events", "delayed", "prioritized", "pc", "marker", "stalled"))
        self._to_wait_keys = tuple(keys[name] for name in (
            "active", "wait", "stalled", "paused", "meta", "limiter", "prioritized", "marker",
            "events"))
        self._stalled_keys = tuple(keys[name] for name in (
            "stalled", "wait", "active", "stalled-check", "meta", "paused", "marker", "events",
            "repeat"))
        self._scripts = registry.scripts

    async def move_to_active(self, packed_fetch_opts: bytes) -> NextJob:
        reply = await self.registry.call(self.client, self._scripts["moveToActive-11"],
                                         *self._active_keys, self.job_key_prefix, now_ms(),
                                         packed_fetch_opts)
        return next_job(reply)

    async def move_to_finished(self, job_id: str, target: str, prop: str, value: str,
                               fetch_next: bool, packed_opts: bytes,
                               fields: bytes = b"") -> Any:
        """moveToFinished: the next job's 4-tuple when it fetched one, 0, or a refusal code."""
        return await self.registry.call(
            self.client, self._scripts["moveToFinished-14"], *self._finish_keys[target],
            self.job_key_prefix + job_id, self._metrics_keys[target], self.keys["marker"],
            job_id, now_ms(), prop, value, target, "1" if fetch_next else "0",
            self.job_key_prefix, packed_opts, fields)

    async def move_to_delayed(self, job_id: str, token: str, delay_ms: int, fields: bytes,
                              packed_fetch_opts: bytes | None) -> Any:
        """Back off: to `delayed` for `delay_ms`; with fetch opts it may return the next job."""
        return await self.registry.call(
            self.client, self._scripts["moveToDelayed-11"], *self._delayed_keys,
            self.job_key_prefix + job_id, *self._delayed_tail, self.job_key_prefix, now_ms(),
            job_id, token, delay_ms, "0", fields, "1" if packed_fetch_opts else "0",
            packed_fetch_opts or b"")

    async def retry_job(self, job_id: str, token: str, fields: bytes, lifo: bool) -> Any:
        return await self.registry.call(
            self.client, self._scripts["retryJob-11"], *self._retry_keys,
            self.job_key_prefix + job_id, *self._retry_tail, self.job_key_prefix, now_ms(),
            "RPUSH" if lifo else "LPUSH", job_id, token, fields)

    async def move_to_wait(self, job_id: str, token: str) -> Any:
        """Hand an active job back to the queue without counting an attempt (Node's
        job.moveToWait): the limiter's wait (ms) or a refusal code."""
        return await self.registry.call(
            self.client, self._scripts["moveJobFromActiveToWait-9"], *self._to_wait_keys,
            job_id, token, self.job_key_prefix + job_id)

    async def extend_locks(self, job_ids: list[str], tokens: list[str],
                           duration_ms: int) -> list[str]:
        """Renew locks in one call; the ids whose lock was gone or held by another token."""
        failed = await self.registry.call(
            self.client, self._scripts["extendLocks-1"], self.keys["stalled"],
            self.job_key_prefix, pack(tokens), pack(job_ids), duration_ms)
        return [item.decode() if isinstance(item, bytes) else str(item) for item in failed or ()]

    async def move_stalled_to_wait(self, max_stalled_count: int,
                                   interval_ms: int) -> tuple[list[str], int]:
        """The stalled check; the ids it moved, and when the fleet's next check is due (ms)."""
        # Both issued in one loop turn, so they go out in one write, the check first.
        moved, ttl_ms = await asyncio.gather(
            self.registry.call(self.client, self._scripts["moveStalledJobsToWait-9"],
                               *self._stalled_keys, max_stalled_count, self.job_key_prefix,
                               now_ms(), interval_ms),
            self.client.execute_command("PTTL", self.keys["stalled-check"]))
        return [item.decode() for item in moved or ()], int(ttl_ms)

    async def update_progress(self, job_id: str, progress_json: str) -> int:
        return int(await self.registry.call(
            self.client, self._scripts["updateProgress-3"], self.job_key_prefix + job_id,
            self.keys["events"], self.keys["meta"], job_id, progress_json))

    async def add_log(self, job_id: str, line: str, keep_logs: int | None) -> int:
        job_key = self.job_key_prefix + job_id
        return int(await self.registry.call(
            self.client, self._scripts["addLog-2"], job_key, f"{job_key}:logs", job_id, line,
            keep_logs or ""))

    async def update_scheduler(self, scheduler_id: str, next_ms: int, template_data: str,
                               packed_job_opts: bytes, producer_id: str | None) -> Any:
        """updateJobScheduler: the next iteration's delayed job, produced by `producer_id`."""
        keys = self.keys
        return await self.registry.call(
            self.client, self._scripts["updateJobScheduler-12"], keys["repeat"], keys["delayed"],
            keys["wait"], keys["paused"], keys["meta"], keys["prioritized"], keys["marker"],
            keys["id"], keys["events"], keys["pc"],
            self.job_key_prefix + producer_id if producer_id else "", keys["active"],
            next_ms, scheduler_id, template_data, packed_job_opts, now_ms(),
            self.job_key_prefix, producer_id or "")
