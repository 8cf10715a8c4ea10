"""Address → redis-py clients for every topology: one server, Sentinel's master, a Cluster node.

Every bullpen client is built here. A Sentinel or Cluster client is a plain client whose
connections ask a Locator where to connect each time they (re)connect: Sentinel's current
master, or the Cluster master owning the slot of the client's queue (all keys of a queue share
one hash slot). A reply saying the node is no longer the right one (READONLY after a failover,
MOVED/ASK during a slot migration, TRYAGAIN, CLUSTERDOWN, a demoted master's UNBLOCKED) means the
command did not run: the connection drops, the Locator forgets what it knew and the error becomes
a ConnectionError, so every caller's outage path (retry with backoff, scripts loaded again on the
new connection) follows the move as it follows a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from bullpen.adapter.sentinel_watch import SwitchWatch, switch_watch
from bullpen.keyspace import Keyspace, check_cluster_keys
from bullpen.redis_address import RedisAddress

LOCATOR = "bullpen_locator"
SLOT_KEY = "bullpen_slot_key"
LOOKUP_TIMEOUT_S = 2.0
# MovedError is an AskError. UNBLOCKED: a master turned replica ends its blocked commands so.
_MOVED = (ReadOnlyError, AskError, TryAgainError, ClusterDownError)
_MOVED_PREFIXES = ("UNBLOCKED", "MASTERDOWN")


def is_moved(error: BaseException) -> bool:
    """Whether a reply error means "not on this node (any more)": the command did not run."""
    return isinstance(error, _MOVED) or (
        isinstance(error, ResponseError) and str(error).startswith(_MOVED_PREFIXES))


@dataclass(slots=True)
class Locator:
    """Where a Sentinel or Cluster address's commands go now."""

    address: RedisAddress
    login: dict[str, Any]
    _slots: list[tuple[int, int, str, int]] | None = field(default=None, repr=False)
    _watch: SwitchWatch | None = field(default=None, repr=False)
    # Every node the slot map named (replicas too): asked after the URL's seeds, so losing
    # the seed nodes alone does not lose the cluster.
    _seen: dict[tuple[str, int], None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.address.topology == "sentinel":
            self._watch = switch_watch(self.address)

    @property
    def epoch(self) -> int:
        """Bumped when Sentinel switches the master: connections made before move."""
        return self._watch.epoch if self._watch is not None else 0

    async def locate(self, slot_key: str | None) -> tuple[str, int]:
        """(host, port) of the master for `slot_key` (any master when None)."""
        if self.address.topology == "sentinel":
            assert self._watch is not None
            self._watch.start()
            # Announced before Sentinel's own answer changes (a promotion comes first).
            return self._watch.master or await self._sentinel_master()
        if self._slots is None:
            self._slots = await self._cluster_slots()
        slot = key_slot(slot_key.encode()) if slot_key is not None else None
        for start, end, host, port in self._slots:
            if slot is None or start <= slot <= end:
                return host, port
        raise RedisConnectionError(f"no Redis Cluster master serves hash slot {slot}")

    def forget(self) -> None:
        self._slots = None

    def _quick(self, sentinel: bool = False) -> dict[str, Any]:
        login = self.login
        if sentinel:
            login = {"username": self.address.sentinel_username,
                     "password": self.address.sentinel_password}
        return {**self.tls_options(), **login, "socket_timeout": LOOKUP_TIMEOUT_S,
                "socket_connect_timeout": LOOKUP_TIMEOUT_S, "retry": Retry(NoBackoff(), 0)}

    def tls_options(self) -> dict[str, Any]:
        return {"ssl": True, **self.address.tls} if self.address.uses_tls else {}

    async def _sentinel_master(self) -> tuple[str, int]:
        sentinel = Sentinel(list(self.address.nodes), min_other_sentinels=0,
                            sentinel_kwargs=self._quick(sentinel=True))
        try:
            host, port = await sentinel.discover_master(self.address.master_name or "")
        except MasterNotFoundError:
            # redis-py's message lists each sentinel client's whole repr: say it shortly.
            hosts = ", ".join(f"{host}:{port}" for host, port in self.address.nodes)
            raise RedisConnectionError(
                f"no sentinel ({hosts}) answered with a healthy master named "
                f"{self.address.master_name!r}") from None
        finally:
            for client in sentinel.sentinels:
                await client.aclose()
        return str(host), int(port)

    async def _cluster_slots(self) -> list[tuple[int, int, str, int]]:
        errors = []
        for host, port in dict.fromkeys([*self.address.nodes, *self._seen]):
            client = aioredis.Redis(host=host, port=port, **self._quick())
            try:
                reply = await client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
            except RedisError as exc:
                errors.append(f"{host}:{port}: {type(exc).__name__}")
                continue
            finally:
                await client.aclose()
            for entry in reply:
                for node in entry[2:]:
                    self._seen[(_text(node[0]) or host, int(node[1]))] = None
            return [(int(entry[0]), int(entry[1]), _text(entry[2][0]) or host, int(entry[2][1]))
                    for entry in reply]
        raise RedisConnectionError("no Redis Cluster seed node answered (" + ", ".join(errors)
                                   + ")")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _LocatedMixin:
    """A connection that asks its Locator where to connect, and drops itself when moved."""

    host: str
    port: int

    def __init__(self, *, bullpen_locator: Locator, bullpen_slot_key: str | None = None,
                 **kwargs: Any) -> None:
        self._locator = bullpen_locator
        self._slot_key = bullpen_slot_key
        self._epoch = bullpen_locator.epoch
        super().__init__(**kwargs)

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        if self._epoch != self._locator.epoch and self.is_connected:  # type: ignore[attr-defined]
            await self.disconnect()  # type: ignore[attr-defined]  # the master switched
        await super().send_packed_command(*args, **kwargs)  # type: ignore[misc]

    async def _connect(self) -> None:
        self._epoch = self._locator.epoch
        try:
            self.host, self.port = await self._locator.locate(self._slot_key)
            await super()._connect()  # type: ignore[misc]
        except BaseException:
            self._locator.forget()
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except ResponseError as exc:
            if not is_moved(exc):
                raise
            self._locator.forget()
            await self.disconnect()  # type: ignore[attr-defined]
            raise RedisConnectionError(f"Redis moved ({type(exc).__name__}): "
                                       "finding the master again") from exc


class LocatedConnection(_LocatedMixin, aioredis.Connection):
    pass


class LocatedSSLConnection(_LocatedMixin, SSLConnection):
    pass


def located(connection: dict[str, Any], address: RedisAddress) -> dict[str, Any]:
    """`connection` (redis-py options) for a Sentinel or Cluster address: a Locator added."""
    if address.topology == "single":
        return connection
    login = {"username": address.username, "password": address.password}
    # Where the connection goes is decided on connect; redis-py wants some address until then.
    host, port = address.nodes[0]
    return connection | {LOCATOR: Locator(address, login), "host": host, "port": port}


def for_queue(connection: dict[str, Any], prefix: str, queue: str) -> dict[str, Any]:
    """`connection` for the node serving the queue's hash slot; under Cluster, ClusterKeyError
    when the queue's keys would not share one slot."""
    locator = connection.get(LOCATOR)
    if locator is None:
        return connection
    if locator.address.topology == "cluster":
        check_cluster_keys(prefix, [queue])
    return for_key(connection, Keyspace(prefix, queue).bullmq("meta"))


def for_key(connection: dict[str, Any], key: str) -> dict[str, Any]:
    """`connection` for the node serving `key`'s hash slot."""
    return connection | {SLOT_KEY: key} if LOCATOR in connection else connection


def plain_options(connection: dict[str, Any]) -> dict[str, Any]:
    """The options redis-py's own constructors accept."""
    return {key: value for key, value in connection.items() if key not in (LOCATOR, SLOT_KEY)}


def redis_pool(connection: dict[str, Any], pool_class: type[aioredis.ConnectionPool],
               **options: Any) -> Any:
    """A connection pool of `pool_class` for any topology; `options` are redis-py's own."""
    kwargs = plain_options(connection) | options
    ssl = kwargs.pop("ssl", False)  # a pool takes the connection class instead
    locator = connection.get(LOCATOR)
    if locator is not None:
        kwargs.update(connection_class=LocatedSSLConnection if ssl else LocatedConnection,
                      bullpen_locator=locator, bullpen_slot_key=connection.get(SLOT_KEY))
    elif ssl:
        kwargs["connection_class"] = SSLConnection
    return pool_class(**kwargs)


def redis_client(connection: dict[str, Any], client_class: type[aioredis.Redis] = aioredis.Redis,
                 **options: Any) -> Any:
    """A client of `client_class` for any topology; `options` are redis-py's own."""
    client = client_class(**plain_options(connection) | options)
    locator = connection.get(LOCATOR)
    if locator is not None:
        pool = client.connection_pool
        ssl = issubclass(pool.connection_class, SSLConnection)
        pool.connection_class = LocatedSSLConnection if ssl else LocatedConnection
        pool.connection_kwargs.update(bullpen_locator=locator,
                                      bullpen_slot_key=connection.get(SLOT_KEY))
    return client
