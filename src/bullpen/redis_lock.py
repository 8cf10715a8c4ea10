"""A small cluster-wide mutex in Redis (SET NX PX with a token, released only by its holder)."""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as aioredis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLock:
    """`async with RedisLock(redis, key, ttl_ms)`; `acquire(wait_s=0)` tries once."""

    def __init__(self, redis: aioredis.Redis, key: str, ttl_ms: int) -> None:
        self._redis = redis
        self.key = key
        self._ttl_ms = ttl_ms
        self._token = secrets.token_hex(16)

    async def acquire(self, wait_s: float = 0.0) -> bool:
        deadline = time.monotonic() + wait_s
        while True:
            if await self._redis.set(self.key, self._token, nx=True, px=self._ttl_ms):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def extend(self) -> bool:
        """Renew the lock if it is still ours; False means it expired and may be another's."""
        return bool(await self._redis.eval(_EXTEND, 1, self.key, self._token, self._ttl_ms))

    async def release(self) -> None:
        await self._redis.eval(_RELEASE, 1, self.key, self._token)

    async def __aenter__(self) -> RedisLock:
        if not await self.acquire(wait_s=self._ttl_ms / 1000):
            raise TimeoutError(f"could not take lock {self.key} within {self._ttl_ms} ms")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.release()
