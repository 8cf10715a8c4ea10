"""bullpen's per-minute history: buckets and percentiles, what a worker counts and flushes, what
the dashboard reads back, and how much Redis memory a queue's history takes."""

from __future__ import annotations

import random
import statistics
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis

from bullpen.adapter import QueueClient
from bullpen.keyspace import Keyspace
from bullpen.runtime import series
from bullpen.runtime.series import (
    BUCKETS,
    FAILED,
    MAX_TASKS,
    OK,
    OTHER_TASK,
    RETRIED,
    RUN,
    WAIT,
    MinuteSeries,
    bucket_bounds,
    bucket_of,
    percentile,
    read_slots,
)
from bullpen.runtime.stats import TaskStats, read_lateness

MINUTE = 60_000
NOW_MINUTE = 29_000_000  # an epoch minute in 2025


def test_every_duration_lands_in_the_bucket_that_holds_it() -> None:
    for ms in (0, 0.05, 0.1, 0.1415, 0.2, 1, 1.5, 7.3, 99.9, 1000, 61_000, 3_600_000):
        low, high = bucket_bounds(bucket_of(ms))
        assert low <= ms < high or bucket_of(ms) == BUCKETS - 1, ms
    assert bucket_of(10 ** 9) == BUCKETS - 1
    assert bucket_of(-5) == 0  # a clock a little behind another host's


def test_percentiles_are_within_ten_percent_of_the_exact_ones() -> None:
    rng = random.Random(7)
    worst = 0.0
    for median_ms in (0.3, 4, 120, 2500):
        samples = [rng.lognormvariate(0, 0.8) * median_ms for _ in range(5000)]
        histogram = [0] * BUCKETS
        for sample in samples:
            histogram[bucket_of(sample)] += 1
        exact = statistics.quantiles(samples, n=100)
        for fraction, truth in ((0.5, exact[49]), (0.95, exact[94])):
            estimate = percentile(histogram, fraction)
            assert estimate is not None
            worst = max(worst, abs(estimate - truth) / truth)
    assert worst < 0.10, worst
    assert percentile([0] * BUCKETS, 0.5) is None


def _counts(tally: list[int]) -> tuple[int, int, int, int, int]:
    return (tally[OK], tally[FAILED], tally[RETRIED], sum(tally[WAIT:RUN]), sum(tally[RUN:]))


def test_a_worker_counts_per_minute_and_slot_and_folds_stray_task_names() -> None:
    history = MinuteSeries(known_tasks=["a.task"])
    at = NOW_MINUTE * MINUTE
    history.record("a.task", at + 1_000, 2.0, 5.0, OK)
    history.record("a.task", at + 59_999, None, 5.0, RETRIED)
    history.record("a.task", at + MINUTE, 1.0, 5.0, FAILED)
    for index in range(MAX_TASKS + 5):
        history.record(f"stray.{index}", at, 1.0, 1.0, OK)
    assert history.last_hour(NOW_MINUTE + 1)[-2:] == [2 + MAX_TASKS + 5, 1]
    drained = history.drain()
    assert _counts(drained[(1, NOW_MINUTE, "a.task")]) == (1, 0, 1, 1, 2)
    assert _counts(drained[(1, NOW_MINUTE + 1, "a.task")]) == (0, 1, 0, 1, 1)
    ten = NOW_MINUTE - NOW_MINUTE % 10
    assert _counts(drained[(10, ten, "a.task")]) == (1, 1, 1, 2, 3)
    names = {name for (step, _, name) in drained if step == 1}
    # Registered names first, then the first seen up to MAX_TASKS; the rest are one name.
    assert len(names) == MAX_TASKS + 1 and OTHER_TASK in names
    assert drained[(1, NOW_MINUTE, OTHER_TASK)][OK] == 6
    assert history.drain() == {}
    # Flushed minutes stay in the worker's own last hour.
    assert history.last_hour(NOW_MINUTE + 1)[-2:] == [2 + MAX_TASKS + 5, 1]
    assert sum(history.last_hour(NOW_MINUTE + 61)) == 0


def _job(name: str, **fields: Any) -> Any:
    values = {"id": "1", "scheduler_id": None, "attempts_made": 0, "timestamp_ms": 0,
              "delay_ms": 0, "raw_opts": {}} | fields
    return SimpleNamespace(name=name, **values)


async def test_flushed_history_reads_back_with_its_expiry(client: QueueClient,
                                                          raw_redis: aioredis.Redis) -> None:
    stats = TaskStats()
    start = NOW_MINUTE * MINUTE
    stats.record(_job("t.one", timestamp_ms=start - 40), start, 0.003, True)
    stats.record(_job("t.one", attempts_made=1), start + 10, 0.250, False, retried=True)
    # BullMQ zeroes the hash's delay when a delayed job is due; its options keep it.
    stats.record(_job("t.two", timestamp_ms=start - 1000, raw_opts={"delay": 900}), start + 20,
                 0.01, False)
    await stats.flush(client)
    [slot] = await read_slots(client.redis, client.keys, 1, NOW_MINUTE, 1)
    assert _counts(slot.tasks["t.one"]) == (1, 0, 1, 1, 2)
    assert _counts(slot.merged()) == (1, 1, 1, 2, 3)
    wait = slot.tasks["t.two"][WAIT:RUN]
    assert percentile(wait, 0.5) == pytest.approx(120, rel=0.2)  # due 120 ms before its start
    run = slot.tasks["t.one"][RUN:]
    assert percentile(run, 0.5) == pytest.approx(3, rel=0.2)
    fine = client.keys.series_tally(1, NOW_MINUTE, "t.one")
    coarse = client.keys.series_tally(10, NOW_MINUTE - NOW_MINUTE % 10, "t.one")
    assert 0 < await raw_redis.ttl(fine) <= series.FINE_KEEP_S
    assert series.FINE_KEEP_S < await raw_redis.ttl(coarse) <= series.COARSE_KEEP_S
    [ten] = await read_slots(client.redis, client.keys, 10, NOW_MINUTE, 1)
    assert ten.merged() == slot.merged()


async def test_a_schedule_keeps_its_latest_runs_newest_last(client: QueueClient) -> None:
    stats = TaskStats()
    due = NOW_MINUTE * MINUTE
    for tick in range(70):
        job = _job("t.tick", id=f"repeat:nightly:{due + tick * 1000}", scheduler_id="nightly")
        stats.record(job, due + tick * 1000 + tick, 0.001, tick % 10 != 3)
        if tick % 25 == 0:
            await stats.flush(client)
    await stats.flush(client)
    runs = (await read_lateness(client, ["nightly", "never-ran"]))
    assert runs["never-ran"] == []
    assert [run["lateness_ms"] for run in runs["nightly"]] == list(range(10, 70))
    assert runs["nightly"][-7]["outcome"] == "failed"
    key = client.keys.schedule_lateness("nightly")
    assert await client.redis.llen(key) == 60  # kept bounded in Redis, not only when read
    used = await client.redis.memory_usage(key) or 0
    print(f"lateness strip: {used / 1024:.1f} KiB")
    assert used < 16 * 1024  # docs/dashboard.md: 11 KiB per schedule
    assert await client.redis.ttl(key) > 6 * 24 * 3600


def _day_of_history(tasks: int) -> MinuteSeries:
    """A day of traffic: every minute, each task runs jobs whose times spread over buckets."""
    rng = random.Random(tasks)
    history = MinuteSeries()
    for minute in range(NOW_MINUTE - 24 * 60, NOW_MINUTE + 1):
        for task in range(tasks):
            for _ in range(20):
                history.record(f"app.task_{task}", minute * MINUTE, rng.lognormvariate(2, 1.2),
                               rng.lognormvariate(4, 1.2), OK if rng.random() > 0.02 else FAILED)
    return history


@pytest.mark.parametrize(("tasks", "bound_kib"), [(1, 160), (10, 1200)])
async def test_memory_of_a_full_day_per_queue(redis_url: str, queue_name: str,
                                              raw_redis: aioredis.Redis, tasks: int,
                                              bound_kib: int) -> None:
    """The figures docs/dashboard.md states: a day of history for 1 and 10 busy tasks."""
    keys = Keyspace("bull", queue_name)
    history = _day_of_history(tasks)
    pipe = raw_redis.pipeline(transaction=False)
    history.write(pipe, keys)
    await pipe.execute()
    names = [name async for name in raw_redis.scan_iter(f"bull:{queue_name}:bullpen:series:*")]
    try:
        slot_minutes = [_slot_of(name) for name in names]
        fine = {minute for step, minute in slot_minutes if step == "1m"}
        assert len(fine) == 24 * 60 + 1
        assert len({minute for step, minute in slot_minutes if step == "10m"}) == 24 * 6 + 1
        # Minute slots expire after FINE_KEEP_S: at any time the last hour's are kept, and the
        # day lives on in the 10-minute slots.
        kept = [name for name, (step, minute) in zip(names, slot_minutes, strict=True)
                if step == "10m" or minute > NOW_MINUTE - series.FINE_KEEP_S // 60]
        used = sum([await raw_redis.memory_usage(name) or 0 for name in kept])
        print(f"history for {tasks} task(s): {len(kept)} keys, {used / 1024:.0f} KiB")
        assert used < bound_kib * 1024, used
    finally:
        await raw_redis.delete(*names)


def _slot_of(key: str) -> tuple[str, int]:
    step, minute = key.split(":series:", 1)[1].split(":")[:2]
    return step, int(minute)


async def test_memory_bound_when_every_counter_of_every_task_is_used(
        queue_name: str, raw_redis: aioredis.Redis) -> None:
    """The worst case docs/dashboard.md states: MAX_TASKS names plus OTHER_TASK, every bucket
    of wait and run time used, in each of the slots a queue keeps."""
    keys = Keyspace("bull", queue_name)
    history = MinuteSeries()
    at = NOW_MINUTE * MINUTE
    for task in range(MAX_TASKS + 1):
        for bucket in range(BUCKETS):
            low = bucket_bounds(bucket)[0]
            for outcome in (OK, FAILED, RETRIED):
                history.record(f"app.some_task_{task}", at, low, low, outcome)
    pipe = raw_redis.pipeline(transaction=False)
    history.write(pipe, keys)
    await pipe.execute()
    names = [name async for name in raw_redis.scan_iter(f"bull:{queue_name}:bullpen:series:*")]
    try:
        one_slot = [name for name in names if _slot_of(name) == ("1m", NOW_MINUTE)]
        assert len(one_slot) == MAX_TASKS + 2  # the slot's index, a hash per task
        per_slot = sum([await raw_redis.memory_usage(name) or 0 for name in one_slot])
        slots = series.FINE_KEEP_S // 60 + series.COARSE_KEEP_S // 600
        print(f"worst case: {per_slot / 1024:.0f} KiB per slot, {slots} slots, "
              f"{per_slot * slots / 2 ** 20:.1f} MiB")
        assert per_slot * slots < 12 * 2 ** 20
    finally:
        await raw_redis.delete(*names)
