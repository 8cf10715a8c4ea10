"""Reconciling declared schedules with BullMQ's schedulers: diff, ownership, no lost ticks."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import pytest

from bullpen.adapter import JobOptions, QueueClient, SchedulerRecord, now_ms
from bullpen.definitions.schedule import ScheduledJob
from bullpen.reconcile import (
    MAX_MISSED_COUNTED,
    MISSED_GRACE_MS,
    Reconciler,
    ReconcileResult,
    compare,
    declared_digests,
    digest,
    fingerprint,
    log_result,
    missed_runs,
    reconcile,
)
from bullpen.redis_lock import RedisLock
from bullpen.runtime import heartbeat
from bullpen.telemetry.tracing import Telemetry
from tests.helpers.otel import memory_exporter, named, recorded

OPTIONS = JobOptions(attempts=3)


def _hourly(name: str = "cleanup-exports-hourly", pattern: str = "0 * * * *") -> ScheduledJob:
    return ScheduledJob(name=name, task_name="exports.cleanup", pattern=pattern)


@pytest.mark.parametrize("tz", [None, "Asia/Kolkata"])
async def test_first_run_adds_then_a_second_run_changes_nothing(
        client: QueueClient, tz: str | None) -> None:
    def declared(data: dict[str, int]) -> ScheduledJob:
        return ScheduledJob(name="cleanup-exports-hourly", task_name="exports.cleanup",
                            pattern="0 * * * *", tz=tz, data=data)

    first = await reconcile(client, [declared({"b": 1, "a": 2})], OPTIONS)
    # The same data written in another key order is the same schedule.
    second = await reconcile(client, [declared({"a": 2, "b": 1})], OPTIONS)
    assert (first.added, second.unchanged, second.added, second.updated) == (
        ["cleanup-exports-hourly"], ["cleanup-exports-hourly"], [], [])
    [record] = await client.get_schedulers()
    assert (record.id, record.task_name, record.pattern, record.tz) == (
        "cleanup-exports-hourly", "exports.cleanup", "0 * * * *", tz)


def test_the_stored_fingerprint_and_the_heartbeat_digest_keep_their_format() -> None:
    # Both are compared with what older versions wrote (Redis, peers' heartbeats): a change of
    # format would re-upsert every schedule once, and flap them in a mixed fleet.
    text = fingerprint(ScheduledJob(name="n", task_name="exports.cleanup", pattern="0 * * * *",
                                    data={"b": 1, "a": 2}), OPTIONS)
    assert text == '["exports.cleanup","0 * * * *",null,null,{"a":2,"b":1},3,"exponential",1000]'
    assert digest(text) == "e43a90d0973bb706"


@pytest.mark.parametrize(("before", "after"), [
    (_hourly(), _hourly(pattern="30 * * * *")),
    (_hourly(), ScheduledJob(name="cleanup-exports-hourly", task_name="exports.cleanup",
                             pattern="0 * * * *", tz="Asia/Kolkata")),
], ids=["pattern", "tz"])
async def test_new_timing_replaces_a_pending_tick_that_is_not_due(
        client: QueueClient, before: ScheduledJob, after: ScheduledJob) -> None:
    await reconcile(client, [before], OPTIONS)
    [old_tick] = await _pending(client)
    assert (await reconcile(client, [after], OPTIONS)).updated == ["cleanup-exports-hourly"]
    record = await client.get_scheduler("cleanup-exports-hourly")
    assert record is not None and record.next_ms is not None
    # Both changes move the hourly fire to half past the hour, UTC (Kolkata is UTC+5:30).
    assert record.next_ms % 3_600_000 == 1_800_000 and (record.pattern, record.tz) == (
        after.pattern, after.tz)
    assert await _pending(client) == [f"repeat:cleanup-exports-hourly:{record.next_ms}"]
    assert old_tick not in await _pending(client)


async def test_changed_pattern_data_or_options_update_the_scheduler(client: QueueClient) -> None:
    await reconcile(client, [_hourly()], OPTIONS)
    changed = await reconcile(client, [_hourly(pattern="30 * * * *")], OPTIONS)
    assert changed.updated == ["cleanup-exports-hourly"]
    with_data = ScheduledJob(name="cleanup-exports-hourly", task_name="exports.cleanup",
                             pattern="30 * * * *", data={"older_than_hours": 2})
    assert (await reconcile(client, [with_data], OPTIONS)).updated == ["cleanup-exports-hourly"]
    more_attempts = JobOptions(attempts=5)
    assert (await reconcile(client, [with_data], more_attempts)).updated == [
        "cleanup-exports-hourly"]
    [record] = await client.get_schedulers()
    assert record.pattern == "30 * * * *" and record.data == {"older_than_hours": 2}
    assert record.raw_opts["attempts"] == 5


async def test_undeclared_own_schedulers_are_removed_and_foreign_ones_left_alone(
        client: QueueClient) -> None:
    await client.upsert_scheduler("node-app-report", "report.build", {}, pattern="0 3 * * *",
                                  every_ms=None, tz=None, options=OPTIONS)
    await reconcile(client, [_hourly(), _hourly("nightly", "0 2 * * *")], OPTIONS)
    result = await reconcile(client, [_hourly()], OPTIONS)
    assert result.removed == ["nightly"]
    assert result.foreign == ["node-app-report"]
    ids = sorted(record.id for record in await client.get_schedulers())
    assert ids == ["cleanup-exports-hourly", "node-app-report"]
    assert await client.redis.hkeys(client.keys.owned_schedules) == ["cleanup-exports-hourly"]


def _every_second(name: str = "tick", every_ms: int | None = None) -> ScheduledJob:
    if every_ms:
        return ScheduledJob(name=name, task_name="health.check", every_ms=every_ms)
    return ScheduledJob(name=name, task_name="health.check", pattern="* * * * * *")


async def _until_due(client: QueueClient, name: str) -> int:
    """Let time pass (no worker runs) until the scheduler's pending tick is due; its instant."""
    record = await client.get_scheduler(name)
    assert record is not None and record.next_ms is not None
    await asyncio.sleep(max(record.next_ms - now_ms(), 0) / 1000 + 0.2)
    return record.next_ms


async def _pending(client: QueueClient) -> list[str]:
    found = []
    for state in ("delayed", "waiting"):
        found += [job.id for job in await client.get_jobs(state, 0, 10)]
    return sorted(found)


async def _stored(client: QueueClient, name: str, tick_id: str) -> list[dict[str, str]]:
    """The scheduler's hash and its pending tick's hash as Redis holds them: any upsert
    rewrites them (the tick's `timestamp` is its creation time)."""
    stored = []
    for key in (f"repeat:{name}", tick_id):
        raw = await client.redis.hgetall(client.keys.bullmq(key))
        stored.append({str(field): str(value) for field, value in raw.items()})
    return stored


@pytest.mark.parametrize("every_ms", [None, 1000], ids=["cron", "every"])
async def test_a_due_tick_survives_a_restart_with_unchanged_schedules(
        client: QueueClient, every_ms: int | None) -> None:
    # Re-upserting deletes the pending tick even when it is due; unchanged means untouched.
    await reconcile(client, [_every_second(every_ms=every_ms)], OPTIONS)
    due = await _until_due(client, "tick")
    before = await _stored(client, "tick", f"repeat:tick:{due}")
    assert before[0] and before[1]
    result = await reconcile(client, [_every_second(every_ms=every_ms)], OPTIONS)
    assert result.unchanged == ["tick"]
    assert await _pending(client) == [f"repeat:tick:{due}"]
    assert await _stored(client, "tick", f"repeat:tick:{due}") == before
    record = await client.get_scheduler("tick")
    assert record is not None and (record.next_ms, record.iteration_count) == (
        due, int(before[0].get("ic", 0)))


@pytest.mark.parametrize("every_ms", [None, 1000], ids=["cron", "every"])
async def test_an_update_keeps_the_due_tick_and_applies_the_new_options(
        client: QueueClient, every_ms: int | None) -> None:
    await reconcile(client, [_every_second(every_ms=every_ms)], OPTIONS)
    due = await _until_due(client, "tick")
    result = await reconcile(client, [_every_second(every_ms=every_ms)], JobOptions(attempts=5))
    assert result.updated == ["tick"]
    assert await _pending(client) == [f"repeat:tick:{due}"]
    tick = await client.get_job(f"repeat:tick:{due}")
    assert tick is not None and tick.attempts_allowed == 5
    record = await client.get_scheduler("tick")
    assert record is not None and record.raw_opts["attempts"] == 5 and record.next_ms == due


async def _state(client: QueueClient, job_id: str) -> str | None:
    job = await client.get_job(job_id)
    return job.state if job is not None else None


async def test_a_timing_change_keeps_a_due_tick(client: QueueClient) -> None:
    await reconcile(client, [_every_second()], OPTIONS)
    due = await _until_due(client, "tick")
    every_other = ScheduledJob(name="tick", task_name="health.check", pattern="*/2 * * * * *")
    assert (await reconcile(client, [every_other], OPTIONS)).updated == ["tick"]
    record = await client.get_scheduler("tick")
    assert record is not None and (record.pattern, record.next_ms) == ("*/2 * * * * *", due)
    assert await _pending(client) == [f"repeat:tick:{due}"]


@pytest.mark.parametrize(("options", "state"), [
    (OPTIONS, "waiting"), (JobOptions(attempts=3, priority=1), "prioritized")])
async def test_an_update_keeps_a_due_tick_promoted_out_of_delayed(
        client: QueueClient, options: JobOptions, state: str) -> None:
    # A promote (the dashboard's, or BullMQ's when a worker fetches) moves a due tick on.
    await reconcile(client, [_every_second()], options)
    due = await _until_due(client, "tick")
    await client.promote_job(f"repeat:tick:{due}")
    assert await _state(client, f"repeat:tick:{due}") == state
    newer = dataclasses.replace(options, attempts=5)
    assert (await reconcile(client, [_every_second()], newer)).updated == ["tick"]
    tick = await client.get_job(f"repeat:tick:{due}")
    assert tick is not None and (tick.state, tick.attempts_allowed) == (state, 5)
    record = await client.get_scheduler("tick")
    assert record is not None and record.next_ms == due


async def test_an_update_on_a_paused_queue_leaves_a_promoted_due_tick_and_schedules_the_next(
        client: QueueClient) -> None:
    # Paused, BullMQ looks for the tick in the paused list, finds it not, and refuses to write
    # a second job under its id: the update schedules afresh and the waiting tick stays to run.
    await reconcile(client, [_every_second()], OPTIONS)
    due = await _until_due(client, "tick")
    await client.promote_job(f"repeat:tick:{due}")
    await client.pause()
    assert (await reconcile(client, [_every_second()], JobOptions(attempts=5))).updated == ["tick"]
    assert await _state(client, f"repeat:tick:{due}") == "waiting"
    record = await client.get_scheduler("tick")
    assert record is not None and record.next_ms is not None and record.next_ms > due
    assert record.raw_opts["attempts"] == 5
    assert await _state(client, f"repeat:tick:{record.next_ms}") == "delayed"


@pytest.mark.parametrize(("pattern", "tz", "step_ms"), [
    ("0 * * * *", None, 3_600_000), ("0 3 * * *", "Asia/Kolkata", 86_400_000)])
async def test_an_update_on_a_paused_queue_keeps_a_tick_promoted_before_it_was_due(
        client: QueueClient, pattern: str, tz: str | None, step_ms: int) -> None:
    # Paused, BullMQ finds the promoted tick in neither list it looks at, and a cron's next
    # fire after now is that tick's own instant: both upserts collided on its id, and the update
    # waited for a resume. The tick stays to run; the schedule goes on from the fire after it.
    # (An `every` scheduler's script steps past a taken slot by itself.)
    schedule = dataclasses.replace(_hourly(pattern=pattern), tz=tz)
    await reconcile(client, [schedule], OPTIONS)
    record = await client.get_scheduler("cleanup-exports-hourly")
    assert record is not None and record.next_ms is not None and record.next_ms > now_ms()
    promoted = f"repeat:cleanup-exports-hourly:{record.next_ms}"
    await client.pause()
    await client.promote_job(promoted)
    assert (await reconcile(client, [schedule], JobOptions(attempts=5))).updated == [
        "cleanup-exports-hourly"]
    assert await _state(client, promoted) == "waiting"
    updated = await client.get_scheduler("cleanup-exports-hourly")
    assert updated is not None and updated.raw_opts["attempts"] == 5
    assert updated.next_ms == record.next_ms + step_ms  # the next fire in the schedule's zone
    assert await _state(client, f"repeat:cleanup-exports-hourly:{updated.next_ms}") == "delayed"


async def test_with_tracing_on_each_upsert_is_a_producer_span_its_ticks_carry(
        client: QueueClient) -> None:
    exporter = memory_exporter()
    exporter.clear()
    telemetry = Telemetry()
    await Reconciler(client, [_every_second()], OPTIONS, telemetry=telemetry).run()
    due = await _until_due(client, "tick")
    await Reconciler(client, [_every_second()], JobOptions(attempts=5), telemetry=telemetry).run()
    assert await _pending(client) == [f"repeat:tick:{due}"]  # kept through the traced update
    spans = named(recorded(), f"add {client.name}.health.check")
    assert [span["attributes"] for span in spans] == 2 * [{
        "bullmq.queue.name": client.name, "bullmq.queue.operation": "add",
        "bullmq.job.name": "health.check", "bullmq.job.scheduler.id": "tick"}]
    # The tick's job carries the update's span as its parent, where Node stores it (`tm`).
    [_, tick] = await _stored(client, "tick", f"repeat:tick:{due}")
    carrier = json.loads(json.loads(tick["opts"])["tm"])
    update = spans[1]
    assert carrier["traceparent"].split("-")[1:3] == [update["trace_id"], update["span_id"]]


async def test_an_update_of_the_options_keeps_a_pending_tick(client: QueueClient) -> None:
    await reconcile(client, [_hourly()], OPTIONS)
    before = await _pending(client)
    assert (await reconcile(client, [_hourly()], JobOptions(attempts=5))).updated
    assert await _pending(client) == before


async def test_a_registered_version_a_live_peer_declares_is_not_flapped(
        client: QueueClient) -> None:
    schedules = [_every_second()]
    await reconcile(client, schedules, OPTIONS)
    # A live worker (its heartbeat) declares what is registered: attempts 3.
    await heartbeat.beat(client, "peer", 1, 0.0, [], ttl_s=10,
                         schedules=declared_digests(schedules, OPTIONS))
    newer = Reconciler(client, schedules, JobOptions(attempts=5), "me", grace_ms=300)
    assert (await newer.run()).deferred == ["tick"]
    record = await client.get_scheduler("tick")
    assert record is not None and record.raw_opts["attempts"] == 3
    # The peer leaves for good: after the grace period the newer version applies.
    await heartbeat.forget(client, "peer")
    assert (await newer.run()).deferred == ["tick"]  # could be a restart: not yet
    await asyncio.sleep(0.4)
    assert (await newer.run()).updated == ["tick"]
    record = await client.get_scheduler("tick")
    assert record is not None and record.raw_opts["attempts"] == 5


async def test_at_start_up_a_version_no_live_worker_declares_is_replaced(
        client: QueueClient) -> None:
    await reconcile(client, [_every_second()], OPTIONS)
    await heartbeat.beat(client, "old", 1, 0.0, [], ttl_s=10, schedules={"tick": "other"})
    result = await Reconciler(client, [_every_second()], JobOptions(attempts=5), "new").run()
    assert result.updated == ["tick"]


async def test_each_schedule_s_grace_starts_when_its_last_holder_leaves(
        client: QueueClient) -> None:
    schedules = [_every_second("a"), _every_second("b")]
    await reconcile(client, schedules, OPTIONS)
    digests = declared_digests(schedules, OPTIONS)
    for peer, name in (("peer-a", "a"), ("peer-b", "b")):
        await heartbeat.beat(client, peer, 1, 0.0, [], ttl_s=10, schedules={name: digests[name]})
    newer = Reconciler(client, schedules, JobOptions(attempts=5), "me", grace_ms=300)
    assert (await newer.run()).deferred == ["a", "b"]
    await heartbeat.forget(client, "peer-a")
    assert (await newer.run()).deferred == ["a", "b"]
    await asyncio.sleep(0.4)
    await heartbeat.forget(client, "peer-b")
    result = await newer.run()  # a's grace is over; b's has just begun
    assert (result.updated, result.deferred) == (["a"], ["b"])
    await asyncio.sleep(0.4)
    # b's holder comes back (a restart), then leaves again: b's grace starts over.
    await heartbeat.beat(client, "peer-b", 1, 0.0, [], ttl_s=10, schedules={"b": digests["b"]})
    assert (await newer.run()).deferred == ["b"]
    await heartbeat.forget(client, "peer-b")
    assert (await newer.run()).deferred == ["b"]
    await asyncio.sleep(0.4)
    assert (await newer.run()).updated == ["b"]


async def test_a_worker_s_own_heartbeat_does_not_hold_back_its_own_schedules(
        client: QueueClient) -> None:
    schedules = [_every_second()]
    await reconcile(client, schedules, OPTIONS)
    # Another app rewrites the scheduler bullpen registered (Node's upsertJobScheduler).
    await client.upsert_scheduler("tick", "health.check", {}, pattern="*/5 * * * * *",
                                  every_ms=None, tz=None, options=OPTIONS)
    # The worker's heartbeat runs before its reconcile and declares what bullpen registered.
    await heartbeat.beat(client, "me", 1, 0.0, [], ttl_s=10,
                         schedules=declared_digests(schedules, OPTIONS))
    assert (await Reconciler(client, schedules, OPTIONS, "me").run()).updated == ["tick"]
    record = await client.get_scheduler("tick")
    assert record is not None and record.pattern == "* * * * * *"


async def test_three_workers_reconciling_at_once_register_each_schedule_once(
        redis_url: str, queue_name: str) -> None:
    declared = [_hourly(), _hourly("every-5s", "*/5 * * * * *")]
    clients = [QueueClient(redis_url, queue_name) for _ in range(3)]
    try:
        results = await asyncio.gather(*(reconcile(c, declared, OPTIONS) for c in clients))
        added = sorted(name for result in results for name in result.added)
        assert added == ["cleanup-exports-hourly", "every-5s"]
        assert sorted(r.id for r in await clients[0].get_schedulers()) == [
            "cleanup-exports-hourly", "every-5s"]
        assert len(await clients[0].get_jobs("delayed", 0, 10)) == 2
    finally:
        for c in clients:
            await c.close()


async def test_a_reconcile_waits_for_a_peer_s_lock_no_longer_than_its_own_lock_ttl(
        client: QueueClient) -> None:
    # A peer in the middle of its reconcile (or one that died in it) holds the lock for 2 s.
    async with RedisLock(client.redis, client.keys.schedules_lock, 2_000):
        with pytest.raises(TimeoutError, match="within 300 ms"):
            await reconcile(client, [_hourly()], OPTIONS, lock_ttl_ms=300)
    assert await client.get_schedulers() == []


async def test_an_unknown_scheduler_reads_as_none(client: QueueClient) -> None:
    assert await client.get_scheduler("never-declared") is None


JUNE_1_NOON_MS = 1_780_315_200_000  # 2026-06-01T12:00:00Z
HOUR_MS = 3_600_000


def _record(name: str, task: str, pattern: str | None = None, every_ms: int | None = None,
            tz: str | None = None, next_ms: int | None = None) -> SchedulerRecord:
    return SchedulerRecord(id=name, task_name=task, pattern=pattern, every_ms=every_ms, tz=tz,
                           next_ms=next_ms, iteration_count=0)


def test_compare_lists_declared_schedules_first_then_registered_ones_by_owner() -> None:
    declared = [ScheduledJob(name="a", task_name="t.a", pattern="0 2 * * *", tz="Europe/Paris"),
                ScheduledJob(name="b", task_name="t.b", every_ms=5000)]
    mine = _record("a", "t.a", "0 2 * * *", tz="Europe/Paris", next_ms=JUNE_1_NOON_MS + 1)
    foreign = _record("node", "report", "0 3 * * *", tz="America/New_York", next_ms=7)
    orphan = _record("old", "t.old", every_ms=60_000, next_ms=8)
    statuses = compare(declared, [foreign, mine, orphan], owned={"a", "old"})
    assert [(s.name, s.task_name, s.pattern, s.every_ms, s.tz, s.status, s.record)
            for s in statuses] == [
        ("a", "t.a", "0 2 * * *", None, "Europe/Paris", "registered", mine),
        ("b", "t.b", None, 5000, None, "missing", None),
        ("node", "report", "0 3 * * *", None, "America/New_York", "foreign", foreign),
        ("old", "t.old", None, 60_000, None, "orphaned", orphan)]
    assert [status.as_dict(JUNE_1_NOON_MS) for status in statuses[:2]] == [
        {"name": "a", "task": "t.a", "pattern": "0 2 * * *", "every_ms": None,
         "tz": "Europe/Paris", "status": "registered", "description": "At 02:00 AM",
         "next": ["2026-06-02T02:00:00+02:00", "2026-06-03T02:00:00+02:00",
                  "2026-06-04T02:00:00+02:00"],
         "registered_next_ms": JUNE_1_NOON_MS + 1},
        {"name": "b", "task": "t.b", "pattern": None, "every_ms": 5000, "tz": "UTC",
         "status": "missing", "description": "Every 5000 ms", "next": [],
         "registered_next_ms": None}]


def test_missed_runs_count_in_the_schedule_s_zone_up_to_the_grace() -> None:
    # Hourly at :00 in Kolkata (UTC+5:30) fires at :30 UTC; the first missed one at 08:30 UTC.
    kolkata = _record("k", "t", "0 * * * *", tz="Asia/Kolkata",
                      next_ms=JUNE_1_NOON_MS - 3 * HOUR_MS - HOUR_MS // 2)
    # At 11:31 the grace (60 s) ends exactly at the 11:30 fire: it counts.
    assert missed_runs(kolkata, JUNE_1_NOON_MS - HOUR_MS // 2 + MISSED_GRACE_MS) == 4
    # At 12:15 UTC: still 08:30..11:30 (the zone-less hour would add 09:00..12:00).
    assert missed_runs(kolkata, JUNE_1_NOON_MS + HOUR_MS // 4) == 4
    due = _record("d", "t", every_ms=1000, next_ms=JUNE_1_NOON_MS - MISSED_GRACE_MS)
    assert missed_runs(due, JUNE_1_NOON_MS) == 0  # late by the grace exactly: not missed yet
    neither = _record("n", "t", next_ms=0)
    assert missed_runs(neither, JUNE_1_NOON_MS) == 1
    every_second = _record("s", "t", "* * * * * *", next_ms=JUNE_1_NOON_MS - HOUR_MS)
    assert missed_runs(every_second, JUNE_1_NOON_MS) == MAX_MISSED_COUNTED  # capped


def test_the_log_names_each_schedule_then_the_diff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bullpen.worker")
    result = ReconcileResult(added=["a"], removed=["old"], unchanged=["b"], foreign=["node", "x"],
                             deferred=["b"])
    log_result(result, [_hourly("a"), _every_second("b", every_ms=5000)], " on queue q")
    assert list(dict.fromkeys(caplog.messages)) == [
        "Scheduled job registered: a (0 * * * *) on queue q",
        "Scheduled job registered: b (every 5000 ms) on queue q",
        "Scheduled job removed: old (no longer declared on queue q)",
        "Scheduled job b left as registered: live workers declare it so; this worker's version "
        "applies once they are gone",
        "Left alone 2 scheduler(s) bullpen did not create on queue q: node, x",
        "Schedules reconciled on queue q: 1 added, 0 updated, 1 removed, 1 unchanged, 2 foreign, "
        "1 deferred"]
    caplog.clear()
    log_result(ReconcileResult(), [])  # a worker serving one queue names none
    assert caplog.messages[-1] == (
        "Schedules reconciled: 0 added, 0 updated, 0 removed, 0 unchanged, 0 foreign")
