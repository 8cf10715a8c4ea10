"""Declared schedules versus BullMQ's job schedulers: bringing them in line, and reading where
they stand. Reconcile touches only the schedulers bullpen created (its ownership hash)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from bullpen import cron, logs
from bullpen.adapter import JobOptions, QueueClient, SchedulerRecord, now_ms
from bullpen.definitions.schedule import ScheduledJob
from bullpen.redis_lock import RedisLock

log = logs.get("worker")

Status = Literal["registered", "missing", "orphaned", "foreign"]
# A scheduler whose next fire is this far in the past has missed it (no worker took the job).
MISSED_GRACE_MS = 60_000
MAX_MISSED_COUNTED = 1000


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
    owned_key = client.keys.owned_schedules
    async with RedisLock(client.redis, client.keys.schedules_lock, lock_ttl_ms):
        owned = await read_owned(client)
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
    """One "Scheduled job registered" line per schedule, then the diff."""
    for schedule in schedules:
        log.info("Scheduled job registered: %s (%s)", schedule.name, schedule.repeat_text)
    for name in result.removed:
        log.info("Scheduled job removed: %s (no longer declared)", name)
    if result.foreign:
        log.info("Left alone %d scheduler(s) bullpen did not create: %s",
                 len(result.foreign), ", ".join(result.foreign))
    log.info("Schedules reconciled: %s", result.summary())


async def read_owned(client: QueueClient) -> dict[str, str]:
    """The schedulers bullpen registered: name → fingerprint of what it registered."""
    raw = await client.redis.hgetall(client.keys.owned_schedules)
    return {str(name): str(value) for name, value in raw.items()}


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """Where one schedule stands: declared here, registered in Redis, or both.

    `missing`: declared, not registered; `orphaned`: registered by bullpen, no longer
    declared; `foreign`: registered by someone else (another app, Node BullMQ).
    """

    name: str
    task_name: str
    pattern: str | None
    every_ms: int | None
    tz: str | None
    status: Status
    record: SchedulerRecord | None

    def as_dict(self, at_ms: int | None = None) -> dict[str, Any]:
        """JSON for the CLI, dashboard and API: with a description and the next 3 fire times."""
        upcoming = (cron.next_fire_times(self.pattern, at_ms or now_ms(), self.tz)
                    if self.pattern else [])
        return {
            "name": self.name, "task": self.task_name, "pattern": self.pattern,
            "every_ms": self.every_ms, "tz": self.tz or "UTC", "status": self.status,
            "description": (cron.describe(self.pattern) if self.pattern
                            else f"Every {self.every_ms} ms"),
            "next": [moment.isoformat() for moment in upcoming],
            "registered_next_ms": self.record.next_ms if self.record else None,
        }


def compare(declared: list[ScheduledJob], registered: list[SchedulerRecord],
            owned: set[str]) -> list[ScheduleStatus]:
    """One status per schedule name known on either side: declared ones first, in order."""
    by_id = {record.id: record for record in registered}
    statuses: list[ScheduleStatus] = []
    for item in declared:
        record = by_id.pop(item.name, None)
        statuses.append(ScheduleStatus(item.name, item.task_name, item.pattern, item.every_ms,
                                       item.tz, "registered" if record else "missing", record))
    for record in by_id.values():
        statuses.append(ScheduleStatus(record.id, record.task_name, record.pattern,
                                       record.every_ms, record.tz,
                                       "orphaned" if record.id in owned else "foreign", record))
    return statuses


async def schedule_status(client: QueueClient,
                          declared: list[ScheduledJob]) -> list[ScheduleStatus]:
    """Read the registered schedulers and bullpen's ownership, and compare them with `declared`."""
    registered = await client.get_schedulers()
    return compare(declared, registered, set(await read_owned(client)))


def missed_runs(record: SchedulerRecord, at_ms: int) -> int:
    """Fire times between the scheduler's pending `next` and `at_ms` less the grace period."""
    if record.next_ms is None or record.next_ms >= at_ms - MISSED_GRACE_MS:
        return 0
    cutoff = at_ms - MISSED_GRACE_MS
    if record.every_ms:
        return min(MAX_MISSED_COUNTED, (cutoff - record.next_ms) // record.every_ms + 1)
    if not record.pattern:
        return 1
    count, moment = 0, record.next_ms
    while moment <= cutoff and count < MAX_MISSED_COUNTED:
        count += 1
        moment = cron.next_fire_ms(record.pattern, moment, record.tz)
    return count
