"""Doctor checks against Redis: reachable, version, eviction, persistence, workers, jobs."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, RedisError, ResponseError

from bullpen import embedded
from bullpen.adapter import QueueClient, quick_client
from bullpen.definitions.schedule import ScheduledJob
from bullpen.doctor import access, shared_exports
from bullpen.doctor.access import check_access
from bullpen.doctor.check import Check, fail, ok, skip, warn
from bullpen.errors import BullpenError, ClusterKeyError
from bullpen.loader import Definitions
from bullpen.reconcile import schedule_status
from bullpen.redis_tls import describe
from bullpen.redis_url import redact
from bullpen.runtime.heartbeat import live_workers
from bullpen.settings import Settings
from bullpen.version import __version__

QUEUE_NAMES = ("queue", "workers", "schedules", "failed jobs")
NAMES = ("redis", "redis version", "eviction policy", "persistence", access.NAME, *QUEUE_NAMES,
         shared_exports.NAME)
MIN_VERSION = (6, 2, 0)
FAILED_WINDOW_MS = 3600 * 1000


def _target(loaded: Settings) -> tuple[str | None, str]:
    """The URL to check and where it came from; never starts the embedded server."""
    if loaded.worker_redis_url:
        return loaded.worker_redis_url, "WORKER_REDIS_URL"
    return embedded.status(loaded.bullpen_var_dir).url, "embedded server"


async def _info(url: str) -> dict[str, Any] | None:
    """INFO plus two CONFIG values; None when Redis answers but the user may not run INFO."""
    connection = quick_client(url, timeout_s=5)
    try:
        try:
            info: dict[str, Any] = await connection.info()
        except NoPermissionError:
            await connection.ping()
            return None
        info["_save"] = await _config_value(connection, "save")
        info["_appendfsync"] = await _config_value(connection, "appendfsync")
        return info
    finally:
        await connection.aclose()


async def _config_value(connection: aioredis.Redis, name: str) -> str | None:
    """A CONFIG GET value, or None where CONFIG is disabled (many managed services)."""
    try:
        values: dict[Any, Any] = await connection.config_get(name)
    except ResponseError:
        return None
    return values.get(name)


def _queues(loaded: Settings, declared: Definitions | BullpenError) -> list[str]:
    """Every known queue; the settings' alone when the app cannot be loaded."""
    if isinstance(declared, Definitions):
        return declared.queues(loaded)
    default = loaded.worker_default_queue
    return [default, *sorted({spec.name for spec in loaded.queue_specs} - {default})]


async def check_server(loaded: Settings, declared: Definitions | BullpenError) -> list[Check]:
    url, source = _target(loaded)
    if url is None or (source == "embedded server" and not await _reachable(url)):
        return [fail("redis", "WORKER_REDIS_URL is unset and the embedded server is not running",
                     "start a worker (it starts the server) or run `bullpen embedded start`; "
                     "or set WORKER_REDIS_URL"), *(skip(name, "no Redis") for name in NAMES[1:])]
    try:
        info = await _info(url)
    except (RedisError, OSError, BullpenError) as exc:
        unreachable = fail("redis", f"{redact(url)} ({source}) is unreachable: "
                           f"{describe(exc, url)}",
                           "start Redis there or correct WORKER_REDIS_URL (unset it to use the "
                           "embedded one-machine server)")
        return [unreachable, *(skip(name, "no Redis") for name in NAMES[1:])]
    checks = [ok("redis", f"{redact(url)} answers ({source})")]
    if info is None:
        checks += [skip(name, "the Redis user may not run INFO (see permissions)")
                   for name in NAMES[1:4]]
    else:
        checks += [_version(info), _eviction(info), _persistence(info)]
    queues = _queues(loaded, declared)
    for queue in queues:
        checks += await _queue_checks(loaded, url, queue, declared, named=len(queues) > 1)
    if any(check.name.startswith(access.NAME) and check.status == "fail" for check in checks):
        checks.append(skip(shared_exports.NAME, "permissions are missing"))
    else:
        checks.append(await shared_exports.check_shared_exports(loaded, url, queues))
    return checks


async def _queue_checks(loaded: Settings, url: str, queue: str,
                        declared: Definitions | BullpenError, named: bool) -> list[Check]:
    """The checks about one queue; with several queues, each check names its queue."""
    try:
        client = QueueClient(url, queue, loaded.worker_prefix)
    except ClusterKeyError as exc:
        problem, _, fix = str(exc).partition(" Fix: ")
        spanned = "the queue's keys span hash slots"
        found = [skip(access.NAME, spanned), fail("queue", problem, fix),
                 *(skip(name, spanned) for name in QUEUE_NAMES[1:])]
    else:
        schedules = (declared if isinstance(declared, BullpenError)
                     else declared.schedules_on(queue, loaded.worker_default_queue))
        try:
            permissions = await check_access(client)
            if permissions.status == "fail":
                # The other checks would only meet the same refusal.
                found = [permissions,
                         *(skip(name, "permissions are missing") for name in QUEUE_NAMES)]
            else:
                found = [permissions, await _queue(client), await _workers(client, loaded),
                         await _schedules(client, schedules), await _failed_jobs(client)]
        finally:
            await client.close()
    if not named:
        return found
    return [dataclasses.replace(check, name=f"{check.name} ({queue})") for check in found]


async def _reachable(url: str) -> bool:
    try:
        await _info(url)
    except (RedisError, OSError):
        return False
    return True


def _version(info: dict[str, Any]) -> Check:
    text = str(info.get("redis_version", "0"))
    parts = tuple(int(part) for part in text.split(".")[:3] if part.isdigit())
    server = f"Valkey {info['valkey_version']}" if "valkey_version" in info else f"Redis {text}"
    if parts < MIN_VERSION:
        return fail("redis version", f"{server} is older than 6.2",
                    "upgrade to Redis 6.2 or newer (BullMQ's scripts need it)")
    return ok("redis version", server)


def _eviction(info: dict[str, Any]) -> Check:
    policy = info.get("maxmemory_policy", "?")
    if policy != "noeviction":
        return fail("eviction policy", f"maxmemory-policy is {policy}: Redis may delete job keys "
                    "when memory is full",
                    "CONFIG SET maxmemory-policy noeviction, and put `maxmemory-policy "
                    "noeviction` in redis.conf (or the provider's parameter group)")
    return ok("eviction policy", "maxmemory-policy noeviction")


def _persistence(info: dict[str, Any]) -> Check:
    name = "persistence"
    if info.get("aof_last_write_status", "ok") != "ok":
        return fail(name, "the last AOF write failed (disk full or read-only?)",
                    "free disk space for Redis's data dir; see the Redis log")
    save = info.get("_save")
    if info.get("aof_enabled"):
        fsync = info.get("_appendfsync")
        return ok(name, "AOF on" + (f" (appendfsync {fsync})" if fsync else ""))
    enable = ("CONFIG SET appendonly yes, and `appendonly yes` + `appendfsync everysec` "
              "in redis.conf")
    if save:
        return warn(name, f"RDB snapshots only (save {save}): a crash loses the jobs since the "
                    "last snapshot", enable)
    if save is None:
        return warn(name, "AOF off; snapshot schedule unknown (CONFIG is disabled)", enable)
    return fail(name, "off (no AOF, no snapshots): a Redis restart loses every job", enable)


async def _queue(client: QueueClient) -> Check:
    if await client.is_paused():
        return warn("queue", f"{client.name!r} is paused (by bullpen, Node or a dashboard such "
                    "as bull-board): workers take no new jobs",
                    "resume it: the dashboard's Resume button, POST /api/queue/resume, or "
                    "queue.resume() in Node")
    return ok("queue", f"{client.name!r} is not paused")


async def _workers(client: QueueClient, loaded: Settings) -> Check:
    live = await live_workers(client)
    alive = live.bullpen
    others = (f"{len(live.others)} other BullMQ worker(s) on the queue: "
              + ", ".join(conn.name or conn.raw_name for conn in live.others)
              if live.others else "")
    if not alive:
        if others:
            return ok("workers", f"no bullpen worker heartbeat; {others}")
        flag = "" if client.name == loaded.worker_default_queue else f" --queue {client.name}"
        return fail("workers", f"no live worker on queue {client.name!r} (no bullpen "
                    "heartbeat, no BullMQ worker connection)",
                    f"start one: `bullpen worker{flag}` (systemd: systemctl start "
                    "bullpen-worker)")
    described = ", ".join(f"{info.host}/{info.pid} v{info.version} ({info.age_s:.0f} s ago)"
                          for info in alive) + (f"; {others}" if others else "")
    stale = sorted({info.version for info in alive} - {__version__})
    if stale:
        return warn("workers", f"{len(alive)} alive: {described}; this bullpen is "
                    f"v{__version__}", "restart the workers that run "
                    f"{', '.join(stale)} so they run the installed code")
    return ok("workers", f"{len(alive)} alive: {described}")


async def _schedules(client: QueueClient, declared: list[ScheduledJob] | BullpenError) -> Check:
    if isinstance(declared, BullpenError):
        return fail("schedules", f"cannot load the declared schedules: {declared}",
                    "fix the task or schedule module named above, then `bullpen schedules`")
    by_status: dict[str, list[str]] = {}
    for status in await schedule_status(client, declared):
        by_status.setdefault(status.status, []).append(status.name)
    problems = [f"{status}: {', '.join(by_status[status])}"
                for status in ("missing", "orphaned", "foreign") if status in by_status]
    if "missing" in by_status or "orphaned" in by_status:
        return fail("schedules", "; ".join(problems),
                    "restart a worker: at start-up it registers missing schedules and removes "
                    "orphaned ones (then check `bullpen schedules`)")
    registered = len(by_status.get("registered", []))
    if "foreign" in by_status:
        return warn("schedules", f"{registered} registered; not bullpen's: "
                    f"{', '.join(by_status['foreign'])}",
                    "leave them if another app (e.g. Node BullMQ) owns them, else remove there")
    return ok("schedules", f"{registered} declared, all registered")


async def _failed_jobs(client: QueueClient) -> Check:
    since_ms = int(time.time() * 1000) - FAILED_WINDOW_MS
    failed_key = client.keys.bullmq("failed")
    count = int(await client.redis.zcount(failed_key, since_ms, "+inf"))
    if not count:
        return ok("failed jobs", "none in the last hour")
    latest_ids = await client.redis.zrevrangebyscore(failed_key, "+inf", since_ms, start=0, num=1)
    latest = await client.get_job(str(latest_ids[0])) if latest_ids else None
    detail = ""
    if latest is not None:
        reason = (latest.failed_reason or "").splitlines()[0:1]
        detail = f"; latest: {latest.name} #{latest.id}: {''.join(reason)[:120]}"
    return fail("failed jobs", f"{count} in the last hour{detail}",
                "read them with `bullpen jobs --state failed` and `bullpen job <id>`, fix the "
                "cause (the worker log has the traceback), then retry from `bullpen web`")
