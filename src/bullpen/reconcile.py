"""Brings BullMQ's job schedulers in line with the declared schedules; touches only its own."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bullpen import logs
from bullpen.adapter import JobOptions, QueueClient, SchedulerRecord
from bullpen.redis_lock import RedisLock
from bullpen.schedule import ScheduledJob

log = logs.get("worker")

OWNED_KEY = "bullpen:schedules"
LOCK_KEY = "bullpen:reconcile-lock"


@dataclass(slots=True)
class ReconcileResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(getattr(self, name))} {name}" for name in
                 ("added", "updated", "removed", "unchanged", "foreign")]
        return ", ".join(parts)


def fingerprint(schedule: ScheduledJob, options: JobOptions) -> str:
    """What must match for a registered scheduler to count as unchanged."""
    return json.dumps(
        [schedule.task_name, schedule.pattern, schedule.every_ms, schedule.tz, schedule.data,
         options.attempts, options.backoff_type, options.backoff_delay_ms],
        sort_keys=True, separators=(",", ":"),
    )


def _matches(record: SchedulerRecord | None, schedule: ScheduledJob) -> bool:
    return (
        record is not None
        and record.task_name == schedule.task_name
        and record.pattern == schedule.pattern
        and record.every_ms == schedule.every_ms
        and (record.tz or None) == (schedule.tz or None)
        and (record.data or {}) == schedule.data
    )


async def reconcile(client: QueueClient, schedules: list[ScheduledJob], options: JobOptions,
                    lock_ttl_ms: int = 15_000) -> ReconcileResult:
    """Add missing, update changed, remove bullpen's undeclared schedulers; leave others alone.

    Upserting deletes a scheduler's pending tick, so an unchanged scheduler is never upserted.
    Workers starting together serialise on a Redis lock; the later ones find nothing to do.
    """
    result = ReconcileResult()
    owned_key = client.key(OWNED_KEY)
    async with RedisLock(client.redis, client.key(LOCK_KEY), lock_ttl_ms):
        owned: dict[str, str] = await client.redis.hgetall(owned_key)
        registered = {record.id: record for record in await client.get_schedulers()}
        for schedule in schedules:
            wanted = fingerprint(schedule, options)
            record = registered.get(schedule.name)
            if _matches(record, schedule) and owned.get(schedule.name) == wanted:
                result.unchanged.append(schedule.name)
                continue
            await client.upsert_scheduler(
                schedule.name, schedule.task_name, schedule.data, pattern=schedule.pattern,
                every_ms=schedule.every_ms, tz=schedule.tz, options=options,
            )
            await client.redis.hset(owned_key, schedule.name, wanted)
            (result.added if record is None else result.updated).append(schedule.name)
        declared = {schedule.name for schedule in schedules}
        for name in sorted(set(owned) - declared):
            await client.remove_scheduler(name)
            await client.redis.hdel(owned_key, name)
            result.removed.append(name)
        result.foreign = sorted(set(registered) - declared - set(owned))
    return result


def log_result(result: ReconcileResult, schedules: list[ScheduledJob]) -> None:
    """The seed's registration lines, then the diff."""
    for schedule in schedules:
        log.info("Scheduled job registered: %s (%s)", schedule.name, schedule.repeat_text)
    for name in result.removed:
        log.info("Scheduled job removed: %s (no longer declared)", name)
    if result.foreign:
        log.info("Left alone %d scheduler(s) bullpen did not create: %s",
                 len(result.foreign), ", ".join(result.foreign))
    log.info("Schedules reconciled: %s", result.summary())
