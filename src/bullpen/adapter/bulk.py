"""Adding many jobs, each with its own options, in one MULTI/EXEC round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import OutOfMemoryError

from bullpen.adapter.options import JobOptions
from bullpen.adapter.queue import QueueClient
from bullpen.errors import RedisFullError


async def add_many(client: QueueClient, jobs: Sequence[tuple[str, Any, JobOptions]]
                   ) -> list[str]:
    """Add (task, data, options) triples atomically; returns their job ids in order.

    QueueClient.add_bulk gives every job the same options; the app's client needs per-job
    delays, ids, attempts and priorities.
    """
    port_queue = client._queue  # the port's Queue: its addBulk takes options per job
    try:
        added = await port_queue.addBulk([{"name": name, "data": data, "opts": options.to_port()}
                                          for name, data, options in jobs])
    except Exception as exc:
        if isinstance(exc, OutOfMemoryError) or "OOM" in str(exc):
            raise RedisFullError(f"Redis is full (maxmemory reached): none of the {len(jobs)} "
                                 "jobs was enqueued; free memory or raise maxmemory") from exc
        raise
    return [str(job.id) for job in added]
