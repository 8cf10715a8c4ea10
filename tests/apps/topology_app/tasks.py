"""Each run is appended to a ledger on the shared test Redis (TOPOLOGY_LEDGER_URL), never on
the Redis under test: a failover may drop that one's last writes, and the ledger must not."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import redis

from bullpen import JobContext, task

_ledger: list[redis.Redis] = []


def _client() -> redis.Redis:
    if not _ledger:
        _ledger.append(redis.Redis.from_url(os.environ["TOPOLOGY_LEDGER_URL"]))
    return _ledger[0]


@task("topo.record")
def record(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Note the run (queue, job id, worker, when) in the ledger; sleep `work_s` first."""
    time.sleep(float(data.get("work_s", 0)))
    entry = {"job_id": ctx.job.id, "queue": ctx.queue.name, "worker": ctx.worker_id,
             "scheduler": ctx.job.scheduler_id, "at_ms": time.time() * 1000}
    _client().rpush(os.environ["TOPOLOGY_LEDGER_KEY"], json.dumps(entry))
    return {"ran": ctx.job.id}


@task("topo.until_cancelled")
async def until_cancelled(data: dict[str, Any], ctx: JobContext) -> str:
    """Sleeps up to `max_s`; a cancel request (pub/sub) ends it as a cancelled job."""
    await asyncio.sleep(float(data.get("max_s", 20)))
    return "slept"


# Tests move tasks to queues of their own: TOPOLOGY_TASK_QUEUES='{"exports.cleanup": "{b}"}'.
task_queues = json.loads(os.environ.get("TOPOLOGY_TASK_QUEUES", "{}"))
