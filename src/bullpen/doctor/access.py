"""Doctor: may the Redis user run what bullpen needs on a queue: commands, keys, the channel?

One EVAL asks Redis itself (`redis.acl_check_cmd`, Redis 7+) about every command bullpen and
BullMQ's scripts run, about reading and writing the queue's keys and about its cancel channel;
nothing is read or written. A user without EVAL cannot run BullMQ at all, which is the finding.
"""

from __future__ import annotations

import json

from redis.exceptions import NoPermissionError, ResponseError

from bullpen.adapter import QueueClient
from bullpen.adapter.scripts import script_commands
from bullpen.doctor.check import Check, fail, ok, warn

NAME = "permissions"
DOCS = "docs/deployment.md#redis-acl-users"
# Commands bullpen sends itself, outside BullMQ's scripts (subcommands as ACL names them).
DIRECT_COMMANDS = frozenset({
    "ping", "info", "client|setname", "script|load", "evalsha", "eval", "multi", "exec",
    "bzpopmin", "subscribe", "publish", "get", "set", "mget", "del", "exists", "expire",
    "pexpire", "pttl", "type", "zadd", "zrem", "zrange", "zrevrange", "zrangebyscore",
    "zrevrangebyscore", "zremrangebyscore", "zcount", "zcard", "zscore", "hget", "hset", "hdel",
    "hmget", "hgetall", "hkeys", "hexists", "hincrby", "lpush", "lrange", "ltrim", "llen",
    "lindex", "xread", "xrevrange", "smembers", "scard",
})
# Commands that take no key. Every other one is asked about with arguments that are the queue's
# keys: Redis finds a command's keys by position, and a command asked about without them makes
# it read past the arguments (redis-server 7.0.15 crashed on it).
_KEYLESS: dict[str, tuple[str, ...]] = {
    "ping": (), "info": (), "multi": (), "exec": (), "time": (), "script|load": ("x",),
    "client|setname": ("x",), "eval": ("return 1", "0"), "evalsha": ("0" * 40, "0"),
}
# 1 allowed, 0 refused, 2 a command this server does not know (an older Redis: not needed).
_ASK = """
if redis.acl_check_cmd == nil then return redis.error_reply('NOACLCHECK') end
local answers = {}
for i, probe in ipairs(cjson.decode(ARGV[1])) do
  local known, allowed = pcall(redis.acl_check_cmd, unpack(probe))
  answers[i] = known and (allowed and 1 or 0) or 2
end
return answers
"""


def needed_commands() -> list[str]:
    return sorted(DIRECT_COMMANDS | script_commands())


async def _user(client: QueueClient) -> str:
    try:
        return str(await client.redis.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "WHOAMI"))
    except ResponseError:
        return "this user"


def _probe(command: str, keys: tuple[str, str]) -> list[str]:
    """The arguments `command` is asked about with: its own, or the queue's keys (one of
    BullMQ's and one of bullpen's, each twice, for commands that take several)."""
    name = command.split("|")
    if command in _KEYLESS:
        return [*name, *_KEYLESS[command]]
    if command == "xread":
        return ["xread", "streams", keys[0], "0"]
    return [*name, *keys, *keys]


async def _ask(client: QueueClient, probes: list[list[str]]) -> list[int]:
    answers: list[int] = await client.redis.eval(_ASK, 0, json.dumps(probes))
    return answers


async def check_access(client: QueueClient) -> Check:
    """Which permission the user lacks on this queue, named so it can be granted."""
    commands = [name for name in needed_commands() if name not in ("publish", "subscribe")]
    pattern, channel = client.keys.bullmq("*"), client.keys.cancel_channel
    keys = (client.keys.bullmq("wait"), client.keys.workers)
    key_probes = [[command, key] for key in keys for command in ("get", "del")]
    channel_probes = [["publish", channel, "1"], ["subscribe", channel]]
    probes = [_probe(command, keys) for command in commands] + key_probes + channel_probes
    user = await _user(client)
    try:
        answers = await _ask(client, probes)
    except NoPermissionError:
        return fail(NAME, f"user {user!r} may not run EVAL: BullMQ runs every queue operation "
                    "as a Lua script (EVAL, EVALSHA, SCRIPT LOAD)",
                    f"ACL SETUSER {user} +@scripting ({DOCS})")
    except ResponseError as exc:
        if "NOACLCHECK" not in str(exc):
            raise
        return warn(NAME, "not checked: this server has no redis.acl_check_cmd (Redis < 7)",
                    f"compare the user's ACL with the line in {DOCS}")
    allowed = dict(zip(commands, answers, strict=False))
    by_key = answers[len(commands):len(commands) + len(key_probes)]
    on_keys = [allowed[name] for name in commands if name not in _KEYLESS]
    # No key command allowed on the queue's keys, or get/del allowed on one key and not the
    # other: the key pattern is what is missing, whatever the commands.
    keys_missing = not all(by_key) and (any(by_key) or not any(on_keys))
    missing = [name for name in commands if allowed[name] == 0
               and (name in _KEYLESS or not keys_missing)]
    problems = [f"run {', '.join(missing)}"] if missing else []
    grants = [f"+{name}" for name in missing]
    if keys_missing:
        problems.append(f"read and write the queue's keys {pattern}")
        grants.append(f"~{pattern}")
    on_channel = answers[-len(channel_probes):]
    if not any(on_channel):  # both refused: the channel (not two commands) is missing
        problems.append(f"use its cancel channel {channel}")
        grants.append(f"&{channel}")
    else:
        for (command, *_args), answer in zip(channel_probes, on_channel, strict=True):
            if not answer:
                problems.append(f"run {command}")
                grants.append(f"+{command}")
    if problems:
        return fail(NAME, f"user {user!r} may not " + "; may not ".join(problems),
                    f"ACL SETUSER {user} {' '.join(grants)} (the whole line: {DOCS})")
    return ok(NAME, f"user {user!r} may run the {len(commands) + 2} commands bullpen and "
              f"BullMQ's scripts use, on keys {pattern} and channel {channel}")
