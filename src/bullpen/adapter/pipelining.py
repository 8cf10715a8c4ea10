"""A redis-py asyncio client that pipelines concurrent commands over one connection.

A single-connection client has one command in flight at a time, so 50 concurrent jobs wait on
each other's round trips. Node BullMQ's ioredis instead writes every command issued in the same
event-loop turn in one write and reads the replies in order. This client does the same: commands
queue up while a batch is on the wire and go out together in the next one. One long-lived
flusher task does the writing and reading (no task per batch); it keeps one connection and
redis-py's reply parsing, and sends a batch once more on a new connection if the old one was
dropped before it could be written.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from hiredis import pack_command
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

_Command = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]
_DROPPED = (RedisConnectionError, RedisTimeoutError, OSError)


def _pack(conn: Connection, pending: deque[_Command]) -> bytes:
    """One buffer for the batch, packed by hiredis in C (redis-py's packer is pure Python)."""
    packed: list[bytes] = []
    for command, _options, _future in pending:
        name = command[0]
        # "CLIENT SETNAME" is two arguments.
        args = (*name.split(), *command[1:]) if isinstance(name, str) and " " in name else command
        try:
            packed.append(pack_command(args))
        except TypeError:  # bool, None, memoryview…: redis-py's encoder accepts or explains
            packed.extend(conn.pack_command(*args))
    return b"".join(packed)


class PipeliningRedis(aioredis.Redis):
    """`execute_command` joins the next batch; one flusher task writes and reads batches."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("single_connection_client", None)
        super().__init__(**kwargs)
        self._queued: list[_Command] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._held: Connection | None = None
        self._closed = False

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self._closed:
            raise RedisConnectionError("client closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((args, options, future))
        self._wake()
        return await future

    def _wake(self) -> None:
        # The flusher resumes after the callbacks already scheduled, so every command issued
        # in this loop turn shares its next write.
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._queued:
                batch, self._queued = self._queued, []
                await self._send(batch)
            elif self._closed:
                return
            else:
                self._wakeup = loop.create_future()
                await self._wakeup

    async def _send(self, batch: list[_Command]) -> None:
        """Write the batch, read its replies in order; on a dropped connection retry the rest."""
        pending = deque(command for command in batch if not command[2].done())
        try:
            for attempt in (1, 2):
                conn = await self._connection()
                try:
                    await self._attempt(conn, pending)
                    return
                except _DROPPED:
                    await conn.disconnect()
                    if attempt == 2 or not pending:
                        raise
        except BaseException as exc:
            for _args, _options, future in pending:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def _connection(self) -> Connection:
        if self._held is None:
            self._held = await self.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        return self._held

    async def _attempt(self, conn: Connection, pending: deque[_Command]) -> None:
        await conn.send_packed_command(_pack(conn, pending), check_health=False)
        callbacks = self.response_callbacks
        while pending:
            args, options, future = pending[0]
            try:
                if options or args[0] in callbacks:
                    value = await self.parse_response(conn, args[0], **options)
                else:  # EVALSHA and the like: no reply callback to apply
                    value = await conn.read_response()
            except ResponseError as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(value)
            pending.popleft()

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Finish the batches already queued, then drop the connection."""
        self._closed = True
        if self._flusher is not None:
            self._wake()
            await asyncio.wait({self._flusher}, timeout=5)
            if not self._flusher.done():
                self._flusher.cancel()
        held, self._held = self._held, None
        if held is not None:
            await self.connection_pool.release(held)
        await super().aclose(close_connection_pool)
