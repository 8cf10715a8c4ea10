"""The worker's two Redis connections, as Node BullMQ opens them, and how it tells an outage
from a bug: a pipelined command connection (unnamed) and a named blocking one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bullpen.adapter.locators import redis_client
from bullpen.adapter.pipelining import PipeliningRedis
from bullpen.adapter.scripts import ScriptRegistry

# BusyLoadingError (a restarted Redis loading its data) is a ConnectionError.
_OUTAGES = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


def is_outage(error: BaseException) -> bool:
    """Whether `error` means Redis could not be reached (as opposed to a refused command)."""
    return isinstance(error, _OUTAGES)


def command_client(connection: dict[str, Any], registry: ScriptRegistry) -> PipeliningRedis:
    """One connection for every command, scripts loaded on each (re)connect.

    Left unnamed, like Node's, so BullMQ tools count the worker once, by its blocking connection.
    A command that fails on a dropped connection goes back to its caller, which retries on its
    own schedule; the next command connects again.
    """
    client: PipeliningRedis = redis_client(connection, PipeliningRedis,
                                           on_connect=registry.on_connect, decode_responses=False)
    return client


class BlockingWaiter:
    """The named connection that waits on the queue's marker; BullMQ tools list it."""

    def __init__(self, connection: dict[str, Any], client_name: str, marker_key: str) -> None:
        # The name is sent again by redis-py on every reconnect.
        self._client = redis_client(connection, client_name=client_name,
                                    single_connection_client=True, retry=Retry(NoBackoff(), 0))
        self._marker_key = marker_key

    async def connect(self) -> None:
        """Connect now, so the worker is listed before its first wait."""
        await self._client.ping()

    async def pop_marker(self, timeout_s: float) -> float | None:
        """BZPOPMIN on the marker: its score (0 for "jobs waiting", else a due time in epoch ms),
        or None when the timeout passed. A reply later than a second past the timeout means a
        stuck connection: it is dropped (and reopened by the next wait), like Node's watchdog."""
        command = self._client.bzpopmin([self._marker_key], round(timeout_s, 3))
        try:
            reply = await asyncio.wait_for(command, timeout_s + 1)
        except TimeoutError:
            return None
        return float(reply[2]) if reply else None

    async def close(self) -> None:
        await self._client.aclose()


class Health:
    """Routes loop failures: an outage is reported once when it starts and once when Redis
    answers again; anything else goes to `on_error`."""

    retry_delay_s = 0.2

    def __init__(self, on_error: Callable[[BaseException], None],
                 on_connection: Callable[[BaseException | None], None],
                 on_recovered: Callable[[], None]) -> None:
        self._on_error = on_error
        self._on_connection = on_connection
        self._on_recovered = on_recovered
        self.lost = False

    def failed(self, error: BaseException) -> None:
        if not is_outage(error):
            self._on_error(error)
        elif not self.lost:
            self.lost = True
            self._on_connection(error)

    def succeeded(self) -> None:
        if self.lost:
            self.lost = False
            self._on_connection(None)
            self._on_recovered()
