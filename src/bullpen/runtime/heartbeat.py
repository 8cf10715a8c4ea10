"""Worker heartbeats in Redis: who is alive, with what concurrency and which jobs in hand."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from bullpen.adapter import BullmqWorker, QueueClient
from bullpen.version import __version__


@dataclass(slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    version: str
    concurrency: int
    started_at: float
    last_seen: float
    active_jobs: list[str]
    # Schedule name → digest of what this worker declares (see reconcile.Reconciler).
    schedules: dict[str, str] = field(default_factory=dict)
    # Jobs finished in each of the 60 minutes up to the one `last_seen` falls in, oldest first.
    jobs_per_minute: list[int] = field(default_factory=list)
    # The export directory it writes to, and its marker's id (exports/identity.py); None from
    # a worker older than the marker, or before its directory exists.
    export_dir: str = ""
    export_dir_id: str | None = None

    @property
    def age_s(self) -> float:
        return time.time() - self.last_seen


async def beat(client: QueueClient, worker_id: str, concurrency: int, started_at: float,
               active_jobs: list[str], ttl_s: float,
               schedules: dict[str, str] | None = None,
               jobs_per_minute: list[int] | None = None,
               export_dir: tuple[str, str | None] = ("", None)) -> None:
    now = time.time()
    info = WorkerInfo(worker_id, socket.gethostname(), os.getpid(), __version__, concurrency,
                      started_at, now, active_jobs, schedules or {}, jobs_per_minute or [],
                      *export_dir)
    pipe = client.redis.pipeline(transaction=False)
    pipe.set(client.keys.worker(worker_id), json.dumps(asdict(info)), px=int(ttl_s * 1000))
    pipe.zadd(client.keys.workers, {worker_id: now})
    pipe.zremrangebyscore(client.keys.workers, 0, now - 24 * 3600)
    await pipe.execute()


async def forget(client: QueueClient, worker_id: str) -> None:
    await client.redis.delete(client.keys.worker(worker_id))
    await client.redis.zrem(client.keys.workers, worker_id)


async def alive_workers(client: QueueClient) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired, newest first."""
    ids = [str(worker_id) for worker_id in await client.redis.zrevrange(client.keys.workers, 0,
                                                                          999)]
    if not ids:
        return []
    raw: list[Any] = await client.redis.mget([client.keys.worker(worker_id) for worker_id in ids])
    fields = set(WorkerInfo.__dataclass_fields__)
    return [WorkerInfo(**{key: value for key, value in json.loads(item).items() if key in fields})
            for item in raw if item]


@dataclass(slots=True)
class LiveWorkers:
    """Who serves a queue: bullpen workers by heartbeat, other BullMQ workers (Node, or any
    worker BullMQ tools list) by their named Redis connection."""

    bullpen: list[WorkerInfo]
    others: list[BullmqWorker]


async def live_workers(client: QueueClient) -> LiveWorkers:
    """Heartbeats plus `getWorkers()`'s list, each worker counted once: a bullpen worker's
    connection is named `<host>:<pid>`, as its heartbeat says."""
    alive = await alive_workers(client)
    try:
        connections = await client.workers()
    except ResponseError:  # CLIENT LIST refused (some managed services): heartbeats only
        connections = []
    ours = {f"{info.host}:{info.pid}" for info in alive}
    return LiveWorkers(alive, [conn for conn in connections if conn.name not in ours])
