"""Dashboard sign-ins: a random session per sign-in, kept in Redis, ended by expiry or logout.

The cookie holds a random id and an HMAC of it under a key derived from the configured
credentials (so changing WEB_AUTH_TOKEN signs everyone out). Redis holds only the SHA-256 of
each live id with a TTL: a session expires there after WEB_SESSION_MAX_AGE_S whatever the
browser keeps, logout deletes it, and reading Redis gives nobody a usable cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

import redis.asyncio as aioredis

from bullpen.keyspace import Keyspace


class SessionStore:
    """Creates, checks and revokes sign-in sessions shared by every web process."""

    def __init__(self, key: bytes, keyspace: Keyspace, redis: Callable[[], aioredis.Redis],
                 max_age_s: int) -> None:
        self._key = key
        self._keyspace = keyspace
        self._redis = redis
        self.max_age_s = max_age_s

    def _sign(self, session_id: str) -> str:
        return hmac.new(self._key, f"session:{session_id}".encode(), hashlib.sha256).hexdigest()

    def _redis_key(self, session_id: str) -> str:
        return self._keyspace.web_session(hashlib.sha256(session_id.encode()).hexdigest())

    def _id(self, cookie: str) -> str | None:
        """The session id a cookie carries, if its signature is ours."""
        session_id, dot, signature = cookie.rpartition(".")
        if not dot or not session_id or len(cookie) > 200:
            return None
        return session_id if hmac.compare_digest(signature, self._sign(session_id)) else None

    async def create(self) -> str:
        """A new session; its cookie value."""
        session_id = secrets.token_urlsafe(32)
        await self._redis().set(self._redis_key(session_id), "1", ex=self.max_age_s)
        return f"{session_id}.{self._sign(session_id)}"

    async def valid(self, cookie: str) -> bool:
        session_id = self._id(cookie)
        return session_id is not None and bool(await self._redis().exists(
            self._redis_key(session_id)))

    async def revoke(self, cookie: str) -> None:
        session_id = self._id(cookie)
        if session_id is not None:
            await self._redis().delete(self._redis_key(session_id))
