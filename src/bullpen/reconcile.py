"""Declared schedules versus BullMQ's job schedulers: bringing them in line, and reading where
they stand. Reconcile touches only the schedulers bullpen created (its ownership hash)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bullpen import cron, logs
from bullpen.adapter import JobOptions, QueueClient, SchedulerRecord, now_ms
from bullpen.definitions.schedule import ScheduledJob
from bullpen.redis_lock import RedisLock
from bullpen.runtime import heartbeat

if TYPE_CHECKING:
    from bullpen.telemetry.tracing import Telemetry

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
    # Changed here, but left as registered while live workers still declare what is registered.
    deferred: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(getattr(self, name))} {name}" for name in
                 ("added", "updated", "removed", "unchanged", "foreign")]
        if self.deferred:
            parts.append(f"{len(self.deferred)} deferred")
        return ", ".join(parts)


def fingerprint(schedule: ScheduledJob, options: JobOptions) -> str:
    """What must match for a registered scheduler to count as unchanged."""
    return json.dumps(
        [schedule.task_name, schedule.pattern, schedule.every_ms, schedule.tz, schedule.data,
         options.attempts, options.backoff_type, options.backoff_delay_ms],
        sort_keys=True, separators=(",", ":"),
    )


def digest(fingerprint_text: str) -> str:
    """A short stand-in for a fingerprint, carried in worker heartbeats."""
    return hashlib.sha256(fingerprint_text.encode()).hexdigest()[:16]


def declared_digests(schedules: list[ScheduledJob], options: JobOptions) -> dict[str, str]:
    """What this worker declares, schedule name → digest, for its heartbeat."""
    return {item.name: digest(fingerprint(item, options)) for item in schedules}


def _matches(record: SchedulerRecord | None, schedule: ScheduledJob) -> bool:
    return (
        record is not None
        and record.task_name == schedule.task_name
        and record.pattern == schedule.pattern
        and record.every_ms == schedule.every_ms
        and (record.tz or None) == (schedule.tz or None)
        and (record.data or {}) == schedule.data
    )


class Reconciler:
    """Adds missing, updates changed and removes bullpen's undeclared schedulers; leaves others.

    Upserting deletes a scheduler's pending tick, so an unchanged scheduler is never upserted,
    and a changed one is upserted with its pending tick kept. Workers starting together
    serialise on a Redis lock; the later ones find nothing to do.

    Two fleet versions declaring a schedule differently (a rolling deploy) do not flap it: what
    is registered stays while a live worker (by heartbeat) declares it. A worker declaring
    something else applies its version at start-up when no live worker holds the registered
    one, or, on a later `run`, once none has held it for `grace_ms` (a restart is not a leave).
    """

    def __init__(self, client: QueueClient, schedules: list[ScheduledJob], options: JobOptions,
                 worker_id: str = "", grace_ms: int = 30_000, lock_ttl_ms: int = 15_000,
                 telemetry: Telemetry | None = None) -> None:
        self.client = client
        self.telemetry = telemetry
        self.schedules = schedules
        self.options = options
        self.worker_id = worker_id
        self.grace_ms = grace_ms
        self.lock_ttl_ms = lock_ttl_ms
        self._runs = 0
        self._unheld_since: dict[str, int] = {}

    async def run(self) -> ReconcileResult:
        result = ReconcileResult()
        client = self.client
        async with RedisLock(client.redis, client.keys.schedules_lock, self.lock_ttl_ms):
            owned = await read_owned(client)
            registered = {record.id: record for record in await client.get_schedulers()}
            held = await self._held_by_peers()
            for schedule in self.schedules:
                await self._one(schedule, registered.get(schedule.name),
                                owned.get(schedule.name), held, result)
            declared = {schedule.name for schedule in self.schedules}
            for name in sorted(set(owned) - declared):
                await client.remove_scheduler(name)
                await client.redis.hdel(client.keys.owned_schedules, name)
                result.removed.append(name)
            result.foreign = sorted(set(registered) - declared - set(owned))
        self._runs += 1
        return result

    async def _held_by_peers(self) -> set[tuple[str, str]]:
        """(schedule name, digest) pairs that live workers other than this one declare."""
        return {(name, value) for info in await heartbeat.alive_workers(self.client)
                if info.id != self.worker_id for name, value in info.schedules.items()}

    async def _one(self, schedule: ScheduledJob, record: SchedulerRecord | None,
                   owned: str | None, held: set[tuple[str, str]], result: ReconcileResult) -> None:
        wanted = fingerprint(schedule, self.options)
        if _matches(record, schedule) and owned == wanted:
            result.unchanged.append(schedule.name)
            return
        if record is not None and owned is not None and self._defer(schedule.name, owned, held):
            result.deferred.append(schedule.name)
            return
        await self._upsert(schedule, record)
        await self.client.redis.hset(self.client.keys.owned_schedules, schedule.name, wanted)
        (result.added if record is None else result.updated).append(schedule.name)

    def _defer(self, name: str, registered: str, held: set[tuple[str, str]]) -> bool:
        if (name, digest(registered)) in held:
            self._unheld_since.pop(name, None)
            return True
        if self._runs == 0:
            return False
        since = self._unheld_since.setdefault(name, now_ms())
        return now_ms() - since < self.grace_ms

    async def _upsert(self, schedule: ScheduledJob, record: SchedulerRecord | None) -> None:
        if self.telemetry is None:
            await self._upsert_with(schedule, record, self.options)
            return
        # As Node's upsertJobScheduler: every tick's job carries this span's context.
        with self.telemetry.add(self.client.name, schedule.task_name, schedule.name) as produced:
            await self._upsert_with(schedule, record, dataclasses.replace(
                self.options, telemetry_metadata=produced.metadata))

    async def _upsert_with(self, schedule: ScheduledJob, record: SchedulerRecord | None,
                           options: JobOptions) -> None:
        keep = await self._pending_tick(schedule, record)
        upsert = functools.partial(
            self.client.upsert_scheduler, schedule.name, schedule.task_name, schedule.data,
            pattern=schedule.pattern, every_ms=schedule.every_ms, tz=schedule.tz,
            options=options)
        try:
            await upsert(keep_next_ms=keep)
            return
        except Exception:
            if keep is None:
                raise
        try:
            await upsert()  # a worker took the tick meanwhile: it runs; schedule the next one
        except Exception:
            if not schedule.pattern:
                raise
            # On a paused queue BullMQ cannot take back a tick promoted before it was due (it
            # looks in the paused list, the tick is in wait), and the next fire after now is that
            # tick's own id. The tick stays to run; the schedule goes on from the fire after it.
            await upsert(keep_next_ms=cron.next_fire_ms(schedule.pattern, keep, schedule.tz))

    async def _pending_tick(self, schedule: ScheduledJob,
                            record: SchedulerRecord | None) -> int | None:
        """The tick to keep through the update: the pending one if it is due, or if the timing
        did not change (then it is the next fire anyway); None to schedule afresh."""
        if record is None or record.next_ms is None:
            return None
        same_timing = (record.pattern == schedule.pattern and record.every_ms == schedule.every_ms
                       and (record.tz or None) == (schedule.tz or None))
        if not same_timing and record.next_ms > now_ms():
            return None
        tick = await self.client.get_job(f"repeat:{schedule.name}:{record.next_ms}")
        # BullMQ reports a job in the paused list as "waiting".
        waiting = tick is not None and tick.state in ("delayed", "waiting", "prioritized")
        return record.next_ms if waiting else None


async def reconcile(client: QueueClient, schedules: list[ScheduledJob], options: JobOptions,
                    lock_ttl_ms: int = 15_000) -> ReconcileResult:
    """One reconcile, as at a worker's start-up (see Reconciler)."""
    return await Reconciler(client, schedules, options, lock_ttl_ms=lock_ttl_ms).run()


def log_result(result: ReconcileResult, schedules: list[ScheduledJob], where: str = "") -> None:
    """One "Scheduled job registered" line per schedule, then the diff; `where` names the queue
    (" on queue exports") in a worker serving several."""
    for schedule in schedules:
        log.info("Scheduled job registered: %s (%s)%s", schedule.name, schedule.repeat_text,
                 where)
    for name in result.removed:
        log.info("Scheduled job removed: %s (no longer declared%s)", name, where)
    log_deferred(result)
    if result.foreign:
        log.info("Left alone %d scheduler(s) bullpen did not create%s: %s",
                 len(result.foreign), where, ", ".join(result.foreign))
    log.info("Schedules reconciled%s: %s", where, result.summary())


def log_deferred(result: ReconcileResult) -> None:
    for name in result.deferred:
        log.info("Scheduled job %s left as registered: live workers declare it so; this "
                 "worker's version applies once they are gone", name)


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
