"""Waiting for job outcomes: one reader of BullMQ's events stream per client, shared by every wait.

A wait registers a future, then checks the job once: a job that finished before the wait began
is seen by that check, one that finishes later by the stream reader, which started reading
before the check. A slow poll of every waited job (one pipelined round trip for all of them)
covers events the stream lost: trimmed under load, or written while Redis was unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bullpen import logs
from bullpen.adapter import redis_client, redis_pool
from bullpen.errors import JobNotFoundError
from bullpen.keyspace import Keyspace

log = logs.get("client")

FINISHED = ("completed", "failed")
READ_BLOCK_MS = 5000
READ_BATCH = 500
RETRY_DELAY_S = 0.5
Entry = tuple[str, dict[str, str]]  # a stream entry: its id and its fields


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ended, as its completed or failed event (or its job hash) tells it."""

    job_id: str
    state: str
    result: Any = None
    failed_reason: str | None = None
    missing: bool = False


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # a producer other than BullMQ stored plain text


async def outcomes(redis: aioredis.Redis, keys: Keyspace, job_ids: Sequence[str]
                   ) -> dict[str, Outcome | None]:
    """Each job's outcome if finished (None while it is not), all in one round trip.

    A job whose hash is gone comes back as a `missing` outcome.
    """
    pipe = redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.exists(keys.bullmq(job_id))
        pipe.zscore(keys.bullmq("completed"), job_id)
        pipe.zscore(keys.bullmq("failed"), job_id)
        pipe.hmget(keys.bullmq(job_id), ["returnvalue", "failedReason"])
    replies = await pipe.execute()
    found: dict[str, Outcome | None] = {}
    for index, job_id in enumerate(job_ids):
        exists, completed, failed, (returned, reason) = replies[4 * index: 4 * index + 4]
        if not exists:
            found[job_id] = Outcome(job_id, "unknown", missing=True)
        elif completed is not None:
            found[job_id] = Outcome(job_id, "completed", result=_decoded(returned))
        elif failed is not None:
            found[job_id] = Outcome(job_id, "failed", failed_reason=reason)
        else:
            found[job_id] = None
    return found


class JobWaiter:
    """Resolves waits from the queue's events stream: two connections however many wait, one
    blocked reading the stream, one for the checks (pipelines take turns on it).

    Lives on the event loop that started it; `close` stops the reader and the poller.
    """

    def __init__(self, connection: dict[str, Any], keys: Keyspace,
                 poll_interval_s: float) -> None:
        # redis-py gives each concurrent pipeline a pooled connection of its own; a pool of
        # one that blocks makes every wait's check share a single connection.
        # decode_responses goes to the pool: a client given a pool ignores its own.
        self._redis = aioredis.Redis(connection_pool=redis_pool(
            connection, aioredis.BlockingConnectionPool, max_connections=1,
            decode_responses=True))
        self._connection = connection
        self._keys = keys
        self._poll_interval_s = poll_interval_s
        self._waiting: dict[str, list[asyncio.Future[Outcome]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Future[None] | None = None
        self._reader: aioredis.Redis | None = None

    async def wait(self, job_id: str, timeout_s: float | None) -> Outcome:
        """The job's outcome; JobNotFoundError if it does not exist, TimeoutError on time
        (the timeout covers everything, a Redis that does not answer included)."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout_s):
                await self._start()
                self._waiting.setdefault(job_id, []).append(future)
                now = (await outcomes(self._redis, self._keys, [job_id]))[job_id]
                if now is not None:
                    self._resolve(now)
                outcome = await future
        finally:
            self._forget(job_id, future)
        if outcome.missing:
            raise JobNotFoundError(f"job {job_id!r} does not exist (never added, or removed "
                                   "before it finished); check the id")
        return outcome

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await task
        self._tasks.clear()
        if self._reader is not None:
            await self._reader.aclose()
            self._reader = None
        await self._redis.aclose(close_connection_pool=True)
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()
        self._waiting.clear()

    async def _start(self) -> None:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._reader = redis_client(self._connection, decode_responses=True,
                                        single_connection_client=True)
            self._tasks = [asyncio.create_task(self._read(), name="bullpen-events"),
                           asyncio.create_task(self._poll(), name="bullpen-poll")]
        await asyncio.shield(self._ready)

    async def _read(self) -> None:
        assert self._reader is not None and self._ready is not None
        key = self._keys.bullmq("events")
        last_id = await self._last_id(self._reader, key)
        self._ready.set_result(None)
        while True:
            try:
                reply = await self._reader.xread({key: last_id}, count=READ_BATCH,
                                                 block=READ_BLOCK_MS)
            except RedisError as exc:
                log.warning("Reading job events failed (%s); retrying, waits fall back to polling",
                            type(exc).__name__)
                await asyncio.sleep(RETRY_DELAY_S)
                continue
            for _stream, entries in cast(list[tuple[str, list[Entry]]], reply or []):
                for entry_id, fields in entries:
                    last_id = entry_id
                    self._on_event(fields)

    async def _last_id(self, reader: aioredis.Redis, key: str) -> str:
        """Where reading starts: the stream's newest entry now, before any wait checks its job."""
        while True:
            try:
                newest = await reader.xrevrange(key, count=1)
                return str(newest[0][0]) if newest else "0-0"
            except RedisError:
                await asyncio.sleep(RETRY_DELAY_S)

    def _on_event(self, fields: dict[str, str]) -> None:
        event, job_id = fields.get("event"), fields.get("jobId")
        if event not in FINISHED or job_id is None or job_id not in self._waiting:
            return
        if event == "completed":
            self._resolve(Outcome(job_id, event, result=_decoded(fields.get("returnvalue"))))
        else:
            self._resolve(Outcome(job_id, event, failed_reason=fields.get("failedReason")))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            if not self._waiting:
                continue
            try:
                found = await outcomes(self._redis, self._keys, list(self._waiting))
            except RedisError:
                continue
            for outcome in found.values():
                if outcome is not None:
                    self._resolve(outcome)

    def _resolve(self, outcome: Outcome) -> None:
        for future in self._waiting.get(outcome.job_id, []):
            if not future.done():
                future.set_result(outcome)

    def _forget(self, job_id: str, future: asyncio.Future[Outcome]) -> None:
        futures = self._waiting.get(job_id, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            self._waiting.pop(job_id, None)
