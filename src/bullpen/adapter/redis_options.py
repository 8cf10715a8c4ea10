"""Redis client options from a URL: the queue's (reads never time out), quick ones (fail fast)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry as SyncRetry

from bullpen.adapter.locators import located, redis_client
from bullpen.redis_address import parse
from bullpen.redis_tls import check_files


def connection_kwargs(url: str) -> dict[str, Any]:
    """redis-py keyword arguments for any URL bullpen accepts; reads never time out.

    Raises RedisUrlError (a SettingsError whose message never holds the URL) when malformed.
    """
    address = parse(url)
    kwargs: dict[str, Any] = {
        "socket_timeout": None,
        "socket_connect_timeout": 5,
        "username": address.username,
        "password": address.password,
        "db": address.db,
    }
    if address.path is not None:
        kwargs["unix_socket_path"] = address.path
        return kwargs
    kwargs.update(host=address.host, port=address.port)
    if address.uses_tls:
        check_files(address)
        kwargs["ssl"] = True
        kwargs.update(address.tls)
    return located(kwargs, address)


def queue_client(connection: dict[str, Any],
                 on_connect: Callable[[Any], Awaitable[None]] | None = None) -> aioredis.Redis:
    """The producer's client (decoded strings, one connection, as the port builds it), retrying
    a dropped connection three times within about half a second; `on_connect(connection)`
    replaces redis-py's handshake on each (re)connect and must run it.

    The port's own retried 20 times with backoff up to 20 s: after a Redis restart a command
    waited seconds for its next attempt, and with Redis down it hung for minutes.
    """
    client: aioredis.Redis = redis_client(
        connection, decode_responses=True, single_connection_client=True,
        retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), 3),
        retry_on_error=[BusyLoadingError, RedisConnectionError, RedisTimeoutError],
        redis_connect_func=on_connect)
    return client


def quick_kwargs(connection: dict[str, Any], timeout_s: float, *,
                 sync: bool = False) -> dict[str, Any]:
    """Options for a client that tries once and gives up within `timeout_s`.

    The queue's own clients retry a dead server for minutes; a probe or a command line tool
    should say at once that Redis does not answer.
    """
    no_retry = SyncRetry(NoBackoff(), 0) if sync else Retry(NoBackoff(), 0)
    return connection | {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s,
                         "retry": no_retry}


def quick_client(url: str, timeout_s: float = 2.0) -> aioredis.Redis:
    """An asyncio client (decoded strings) for one-off checks, failing fast."""
    client: aioredis.Redis = redis_client(quick_kwargs(connection_kwargs(url), timeout_s),
                                          decode_responses=True)
    return client


async def one_shot(connection: dict[str, Any], *command: Any, timeout_s: float = 2.0) -> Any:
    """Run one command on a fresh connection, without the queue clients' retries."""
    client = redis_client(quick_kwargs(connection, timeout_s))
    try:
        return await client.execute_command(*command)
    finally:
        await client.aclose()


async def probe(url: str, timeout_s: float = 2.0) -> None:
    """One PING, failing fast (raises) when Redis does not answer."""
    await one_shot(connection_kwargs(url), "PING", timeout_s=timeout_s)
