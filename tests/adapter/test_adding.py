"""Adds: what bullpen's own path writes is what the port's add and addBulk write, field by field."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from bullpen.adapter import JobOptions, QueueClient
from tests.helpers.redis_server import private_redis

BATCH: list[tuple[str, Any, JobOptions]] = [
    ("plain", {"i": 1, "text": "é"}, JobOptions(attempts=3, backoff_delay_ms=1000)),
    ("plain", [1, None, {"deep": [True]}], JobOptions(attempts=3, backoff_delay_ms=1000)),
    ("custom", {"i": 3}, JobOptions(job_id="my-id-1", keep_completed=10)),
    ("delayed", {"i": 4}, JobOptions(delay_ms=60_000)),
    ("prioritised", {"i": 5}, JobOptions(priority=3)),
    ("fixed", None, JobOptions(backoff_type="fixed", backoff_delay_ms=5, attempts=2)),
    ("traced", {"i": 7}, JobOptions(telemetry_metadata='{"traceparent":"00-a-b-01"}')),
]
# Written at the moment of the add, so different between the two sides by nature.
VOLATILE = {"timestamp"}


async def _jobs(redis: Any, queue: str, ids: list[str]) -> list[dict[str, str]]:
    jobs = [await redis.hgetall(f"bull:{queue}:{job_id}") for job_id in ids]
    return [{key: value for key, value in job.items() if key not in VOLATILE} for job in jobs]


async def _placement(redis: Any, queue: str) -> dict[str, Any]:
    """Which list or set holds each job (by name), and the events the adds published."""
    names: dict[str, str] = {}
    for job_id in await redis.lrange(f"bull:{queue}:wait", 0, -1):
        names[await redis.hget(f"bull:{queue}:{job_id}", "name")] = "wait"
    for job_id in await redis.zrange(f"bull:{queue}:delayed", 0, -1):
        names[await redis.hget(f"bull:{queue}:{job_id}", "name")] = "delayed"
    for job_id in await redis.zrange(f"bull:{queue}:prioritized", 0, -1):
        names[await redis.hget(f"bull:{queue}:{job_id}", "name")] = "prioritized"
    events = [fields["event"] for _id, fields in await redis.xrange(f"bull:{queue}:events")]
    return {"names": names, "events": events}


async def _port_adds(port: QueueClient, bulk: bool) -> list[str]:
    if bulk:
        added = await port._queue.addBulk([{"name": name, "data": data, "opts": options.to_port()}
                                           for name, data, options in BATCH])
    else:
        added = [await port._queue.add(name, data, options.to_port())
                 for name, data, options in BATCH]
    return [str(job.id) for job in added]


@pytest.mark.parametrize("bulk", [True, False], ids=["add_bulk", "add"])
@pytest.mark.usefixtures("env")
async def test_adds_write_what_the_port_writes(client: QueueClient, redis_url: str,
                                               queue_name: str, raw_redis: aioredis.Redis,
                                               bulk: bool) -> None:
    if bulk:
        ours = await client.add_bulk(BATCH)
    else:
        ours = [await client.add(name, data, options) for name, data, options in BATCH]
    port_queue = f"{queue_name}-slow"
    port = QueueClient(redis_url, port_queue)
    try:
        theirs = await _port_adds(port, bulk)
    finally:
        await port.close()
    assert ours == theirs  # ids from the same counter, and the custom one kept
    assert "my-id-1" in ours
    assert await _jobs(raw_redis, queue_name, ours) == await _jobs(raw_redis, port_queue, theirs)
    assert await _placement(raw_redis, queue_name) == await _placement(raw_redis, port_queue)


async def test_a_bulk_add_after_redis_forgot_its_scripts() -> None:
    with private_redis() as server:  # SCRIPT FLUSH on the shared server would hit other tests
        client = QueueClient(server.url, "flushed")
        try:
            await client.add_bulk(BATCH[:1])
            server.client.script_flush()
            ids = await client.add_bulk(BATCH[:2])
            server.client.script_flush()
            ids.append(await client.add(*BATCH[0]))
            assert server.client.llen("bull:flushed:wait") == 4
            assert len(set(ids)) == 3
        finally:
            await client.close()


@pytest.mark.usefixtures("env")
async def test_a_bulk_add_is_atomic(client: QueueClient, raw_redis: aioredis.Redis,
                                    queue_name: str) -> None:
    unserialisable = ("plain", {"n": float("nan")}, JobOptions())
    with pytest.raises(ValueError, match="JSON compliant"):
        await client.add_bulk([BATCH[0], unserialisable])
    assert await raw_redis.exists(f"bull:{queue_name}:wait") == 0
