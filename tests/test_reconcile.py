"""Reconciling declared schedules with BullMQ's schedulers: diff, ownership, no lost ticks."""

from __future__ import annotations

import asyncio

from bullpen.adapter import JobOptions, QueueClient
from bullpen.definitions.schedule import ScheduledJob
from bullpen.reconcile import reconcile

OPTIONS = JobOptions(attempts=3)


def _hourly(name: str = "cleanup-exports-hourly", pattern: str = "0 * * * *") -> ScheduledJob:
    return ScheduledJob(name=name, task_name="exports.cleanup", pattern=pattern)


async def test_first_run_adds_then_a_second_run_changes_nothing(client: QueueClient) -> None:
    first = await reconcile(client, [_hourly()], OPTIONS)
    second = await reconcile(client, [_hourly()], OPTIONS)
    assert (first.added, second.unchanged, second.added, second.updated) == (
        ["cleanup-exports-hourly"], ["cleanup-exports-hourly"], [], [])
    [record] = await client.get_schedulers()
    assert (record.id, record.task_name, record.pattern) == (
        "cleanup-exports-hourly", "exports.cleanup", "0 * * * *")


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


async def test_a_due_tick_survives_a_restart_with_unchanged_schedules(client: QueueClient) -> None:
    # Re-upserting deletes the pending tick even when it is due; unchanged means untouched.
    await reconcile(client, [_hourly()], OPTIONS)
    [pending] = await client.get_jobs("delayed", 0, 10)
    await client.redis.zadd(client.keys.bullmq("delayed"), {pending.id: 0})  # make the tick due now
    await reconcile(client, [_hourly()], OPTIONS)
    delayed = await client.get_jobs("delayed", 0, 10)
    assert [job.id for job in delayed] == [pending.id]


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


async def test_an_unknown_scheduler_reads_as_none(client: QueueClient) -> None:
    assert await client.get_scheduler("never-declared") is None
