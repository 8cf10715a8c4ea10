"""Cancelling a running job from any process: the request (dashboard, API, client) and the
worker's listener for it.

A request names one run of a job, by the lock token the worker holding it was given, so it
can never stop a later run. It is published on the queue's cancel channel and kept in a key
(with a TTL) beside it: a worker hears the message while subscribed, and on every (re)subscribe
reads the keys of the jobs it runs, so a request sent while its connection was down still
counts. No worker polls anything per job. Node BullMQ workers do not listen: a job a Node worker
holds runs on (Node has no cross-process cancel; its experimental Relay is not spoken here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bullpen.adapter import QueueClient, connection_kwargs, for_key, redis_client
from bullpen.job_ids import is_queue_key
from bullpen.keyspace import Keyspace

REQUEST_TTL_S = 86_400
RECONNECT_DELAY_S = 1.0
# After redis-py reconnects and resubscribes by itself, the stored requests are read this much
# later, once the new subscription is in place (no request falls between the two).
CATCH_UP_DELAY_S = 0.1
# The listener wakes this often when idle, to notice a connection that died silently.
IDLE_CHECK_S = 15.0

# Atomic: only a job whose lock is held (active) gets a request, naming its current run.
_REQUEST = """
local token = redis.call("GET", KEYS[1])
if not token then return 0 end
local message = cjson.encode({job_id = ARGV[2], token = token, reason = ARGV[3]})
redis.call("SET", KEYS[2], message, "EX", ARGV[4])
redis.call("PUBLISH", ARGV[1], message)
return 1
"""


@dataclass(frozen=True, slots=True)
class CancelRequest:
    job_id: str
    token: str
    reason: str | None


async def request_cancel(client: QueueClient, job_id: str, reason: str | None = None) -> bool:
    """Ask the worker running `job_id` to cancel it; False when the job is not running (not
    active: finished, waiting, delayed, unknown)."""
    if is_queue_key(job_id):
        return False
    keys = client.keys
    script = client.redis.register_script(_REQUEST)
    sent = await script(keys=[keys.bullmq(f"{job_id}:lock"), keys.cancel_request(job_id)],
                        args=[keys.cancel_channel, job_id, reason or "", REQUEST_TTL_S])
    return bool(sent)


def parse_request(raw: Any) -> CancelRequest | None:
    """A request as published or stored; None for anything else."""
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if not isinstance(message, dict):
        return None
    job_id, token = message.get("job_id"), message.get("token")
    if not isinstance(job_id, str) or not isinstance(token, str):
        return None
    reason = message.get("reason")
    return CancelRequest(job_id, token, reason if isinstance(reason, str) and reason else None)


Deliver = Callable[[CancelRequest], None]


class CancelListener:
    """Hands every cancel request for the queue to `deliver`; `running` names the jobs (id →
    lock token) this worker runs, whose stored requests are read on each (re)subscribe."""

    def __init__(self, url: str, keys: Keyspace, running: Callable[[], dict[str, str]],
                 deliver: Deliver) -> None:
        self._connection = for_key(connection_kwargs(url), keys.cancel_channel)
        self._keys = keys
        self._running = running
        self._deliver = deliver
        self._catching_up: set[asyncio.Task[None]] = set()
        self._client: aioredis.Redis | None = None

    async def run(self) -> None:
        while True:
            client: aioredis.Redis = redis_client(self._connection, decode_responses=True,
                                                  health_check_interval=int(IDLE_CHECK_S))
            try:
                await self._listen(client)
            except (RedisError, OSError):
                await asyncio.sleep(RECONNECT_DELAY_S)
            finally:
                for task in self._catching_up:
                    task.cancel()
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _listen(self, client: aioredis.Redis) -> None:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._keys.cancel_channel)
            self._client = client
            if pubsub.connection is not None:
                # redis-py may reconnect and resubscribe inside get_message, unseen here.
                pubsub.connection.register_connect_callback(self._resubscribed)
            await self._catch_up(client)
            while True:
                message = await pubsub.get_message(timeout=IDLE_CHECK_S)
                if message is not None:
                    self._hand_over(message.get("data"))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _resubscribed(self, _connection: Any) -> None:
        client = self._client

        async def later() -> None:
            await asyncio.sleep(CATCH_UP_DELAY_S)
            with contextlib.suppress(RedisError, OSError):
                await self._catch_up(client)

        task = asyncio.ensure_future(later())
        self._catching_up.add(task)
        task.add_done_callback(self._catching_up.discard)

    async def _catch_up(self, client: aioredis.Redis | None) -> None:
        running = self._running()
        if not running or client is None:
            return
        ids = list(running)
        stored = await client.mget([self._keys.cancel_request(job_id) for job_id in ids])
        for raw in stored:
            if raw is not None:
                self._hand_over(raw)

    def _hand_over(self, raw: Any) -> None:
        request = parse_request(raw)
        if request is not None:
            self._deliver(request)
