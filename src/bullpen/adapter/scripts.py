"""BullMQ's Lua scripts as the port ships them: loaded on every connect, then run by SHA1.

Loading them all before a (re)connected socket carries any other command means EVALSHA never
meets NOSCRIPT there, so nothing has to be retried out of order. Only a SCRIPT FLUSH under a live
connection can still cause NOSCRIPT: then every script is loaded again and the call repeated.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from redis.exceptions import NoScriptError

from bullpen.adapter.pipelining import Link

# Every script the worker runs; each is byte-identical in the port and Node BullMQ 6.7.0.
WORKER_SCRIPTS = (
    "moveToActive-11", "moveToFinished-14", "moveToDelayed-11", "retryJob-11", "extendLocks-1",
    "moveStalledJobsToWait-9", "updateProgress-3", "addLog-2", "updateJobScheduler-12",
    "moveJobFromActiveToWait-9",
)


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua file: its body, SHA1 and number of keys (from the file name, `name-<keys>`)."""

    name: str
    body: bytes
    sha: str
    num_keys: int


def port_script(name: str) -> Script:
    """The port's shipped `<name>.lua` (for example `moveToActive-11`)."""
    body = (files("bullmq") / "commands" / f"{name}.lua").read_bytes()
    return Script(name, body, hashlib.sha1(body).hexdigest(), int(name.rsplit("-", 1)[1]))


class ScriptRegistry:
    """The worker's scripts, loaded on each new connection and run with EVALSHA."""

    def __init__(self, names: tuple[str, ...] = WORKER_SCRIPTS) -> None:
        self.scripts = {name: port_script(name) for name in names}
        self._reloading: asyncio.Future[None] | None = None

    def __getitem__(self, name: str) -> Script:
        return self.scripts[name]

    async def on_connect(self, link: Link) -> None:
        """SCRIPT LOAD of every script on a new connection, before the commands queued for it
        are written."""
        scripts = list(self.scripts.values())
        loaded = await link.call_all([("SCRIPT", "LOAD", script.body) for script in scripts])
        for script, reply in zip(scripts, loaded, strict=True):
            sha = reply.decode() if isinstance(reply, bytes) else str(reply)
            if sha != script.sha:
                raise RuntimeError(f"Redis loaded {script.name} as {sha}, expected {script.sha}")

    async def call(self, client: Any, script: Script, *keys_and_args: Any) -> Any:
        """EVALSHA; after NOSCRIPT (a SCRIPT FLUSH) load every script again and retry once."""
        try:
            return await client.execute_command("EVALSHA", script.sha, script.num_keys,
                                                *keys_and_args)
        except NoScriptError:
            await self.reload(client)
            return await client.execute_command("EVALSHA", script.sha, script.num_keys,
                                                *keys_and_args)

    async def reload(self, client: Any) -> None:
        """SCRIPT LOAD every script on `client`, once however many callers met NOSCRIPT."""
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._load_all(client))
        await asyncio.shield(self._reloading)

    async def _load_all(self, client: Any) -> None:
        await asyncio.gather(*(client.execute_command("SCRIPT LOAD", script.body)
                               for script in self.scripts.values()))


# `rcall("ZADD", …)` and `redis.call('get', …)`: a command a script runs, by its literal name.
_CALLED = re.compile(rb"""(?:rcall|redis\.p?call)\(\s*["']([A-Za-z]+)["']""")


@functools.cache
def script_commands() -> frozenset[str]:
    """Every command BullMQ's shipped scripts run (lower case), for permission checks: Redis
    checks a user's ACL on each command a script runs, not only on the EVALSHA."""
    found: set[str] = set()
    for entry in (files("bullmq") / "commands").iterdir():
        if entry.name.endswith(".lua"):
            found.update(name.decode().lower() for name in _CALLED.findall(entry.read_bytes()))
    return frozenset(found)
