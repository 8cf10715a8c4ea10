"""QueueClient: enqueue, inspect and act on one queue, and manage its job schedulers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import bullmq
import redis.asyncio as aioredis
from bullmq.job_scheduler import JobScheduler
from redis.exceptions import OutOfMemoryError

from bullpen.adapter.adding import JobAdder
from bullpen.adapter.locators import for_queue
from bullpen.adapter.options import JobOptions
from bullpen.adapter.protocol import refusal
from bullpen.adapter.records import (
    JOB_STATES,
    JobRecord,
    QueueMetrics,
    SchedulerRecord,
    record_of,
    undecodable_record,
)
from bullpen.adapter.redis_options import connection_kwargs, queue_client
from bullpen.adapter.repeat import repeat_strategy
from bullpen.adapter.worker_names import BullmqWorker, parse_client_list
from bullpen.errors import RedisFullError, ReplicationError
from bullpen.job_ids import is_queue_key
from bullpen.keyspace import Keyspace


class QueueClient:
    """Producer and inspector for one queue (enqueue, list, counts, schedulers, actions)."""

    def __init__(self, url: str, queue_name: str, prefix: str = "bull",
                 enqueue_wait: tuple[int, int] | None = None) -> None:
        """`enqueue_wait`: (replicas, timeout ms) each add waits for with WAIT (durable)."""
        self.name = queue_name
        self.enqueue_wait = enqueue_wait
        self.prefix = prefix
        self.keys = Keyspace(prefix, queue_name)
        # Every key of the queue shares one hash slot: its clients talk to the node owning it.
        self.connection = for_queue(connection_kwargs(url), prefix, queue_name)
        self._connects = 0
        self._queue = bullmq.Queue(queue_name, {
            "connection": queue_client(self.connection, self._connected), "prefix": prefix})
        self._schedulers = JobScheduler(self._queue, repeat_strategy=repeat_strategy)
        self._adder = JobAdder(self._queue)

    @property
    def redis(self) -> aioredis.Redis:
        """The queue's redis-py client (decoded strings), for bullpen's own keys."""
        client: aioredis.Redis = self._queue.client
        return client

    async def close(self) -> None:
        await self._queue.close()

    async def ping(self) -> bool:
        return bool(await self._queue.client.ping())

    async def add(self, name: str, data: Any, options: JobOptions) -> str:
        try:
            job_id = await self._adder.add(name, data, options)
        except Exception as exc:
            _raise_if_full(exc, f"job {name!r} was not enqueued")
            raise
        await self._replicated(f"job {job_id} ({name})")
        return job_id

    async def _connected(self, connection: Any) -> None:
        self._connects += 1
        await connection.on_connect()

    async def _replicated(self, what: str, were: str = "was") -> None:
        """WAIT for the replicas `enqueue_wait` asks, on the connection that wrote: a WAIT
        retried on a new connection would count replicas for no write at all."""
        if self.enqueue_wait is None:
            return
        replicas, timeout_ms = self.enqueue_wait
        connects = self._connects
        acked = int(await self.redis.wait(replicas, timeout_ms))
        if self._connects != connects:
            raise ReplicationError(
                f"{what} {were} sent to Redis, but the connection was lost before any replica "
                "could confirm it: it may or may not exist after a failover. Check with "
                "get_job, or enqueue it again with the same job_id (an existing id adds nothing)")
        if acked < replicas:
            raise ReplicationError(
                f"{what} {were} added on the Redis master, but only {acked} of {replicas} "
                f"replicas acknowledged it within {timeout_ms} ms (JOB_ENQUEUE_WAIT_REPLICAS, "
                "JOB_ENQUEUE_WAIT_TIMEOUT_MS): a failover now could lose it. Check the "
                "replicas (INFO replication); enqueueing again with the same job_id adds "
                "nothing if it survived")

    async def add_bulk(self, jobs: Sequence[tuple[str, Any, JobOptions]]) -> list[str]:
        """Add (task, data, options) triples atomically, in one MULTI/EXEC round trip; returns
        their job ids in order."""
        try:
            ids = await self._adder.add_many(jobs)
        except Exception as exc:
            _raise_if_full(exc, f"none of the {len(jobs)} jobs was enqueued")
            raise
        if self.enqueue_wait is not None:
            # The MULTI ran on a pooled connection of its own, and WAIT counts only the writes
            # of the connection it runs on: a write here comes after the MULTI in the
            # replication stream, so replicas that have it have the jobs.
            await self.redis.set(self.keys.enqueue_mark, "1", px=60_000)
            shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
            await self._replicated(f"jobs {shown}", "were")
        return ids

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or None; an id that names one of the queue's own keys (`meta`) is no job."""
        if is_queue_key(job_id):
            return None
        # State first: a job that finishes in between then shows its result with an older state,
        # never "completed" without its return value.
        state = await self._queue.getJobState(job_id)
        raw = await self._queue.client.hgetall(self.keys.bullmq(job_id))
        return self._record(job_id, raw, state) if raw else None

    async def get_jobs(self, state: str, start: int = 0, end: int = 49) -> list[JobRecord]:
        # The port's getJobs fails the whole page on one job it cannot decode; this shows it.
        raw = await self._queue.backend.scripts.getJobs(
            [state], start, end, state in ("waiting", "paused"))
        records, seen = [], set()
        for job_id, fields in (pair for by_type in raw for pair in by_type):
            if job_id not in seen and fields:
                seen.add(job_id)
                records.append(self._record(str(job_id), dict(zip(fields[::2], fields[1::2],
                                                                  strict=True)), state))
        return records

    def _record(self, job_id: str, raw: dict[str, Any], state: str | None) -> JobRecord:
        try:
            return record_of(bullmq.Job.fromJSON(self._queue, raw, job_id), state)
        except (ValueError, RecursionError, TypeError) as exc:
            return undecodable_record(job_id, raw, state, exc)
        except AttributeError:  # the port calls opts.items(); another producer may store any JSON
            return undecodable_record(job_id, raw, state,
                                      ValueError("its opts are not a JSON object"))

    async def get_counts(self, states: Sequence[str] = JOB_STATES) -> dict[str, int]:
        counts = await self._queue.getJobCounts(*states)
        return {state: int(counts.get(state, 0)) for state in states}

    async def get_logs(self, job_id: str) -> list[str]:
        return list((await self._queue.getJobLogs(job_id))["logs"])

    async def retry_job(self, job_id: str) -> None:
        """Run a failed or completed job again (BullMQ's reprocessJob checks the state named)."""
        if is_queue_key(job_id):
            return
        job = await self._queue.getJob(job_id)
        if job is not None:
            state = await self._queue.getJobState(job_id)
            await job.retry("completed" if state == "completed" else "failed")

    async def retry_all_failed(self) -> None:
        await self._queue.retryJobs({"state": "failed", "count": 1000})

    async def remove_job(self, job_id: str) -> bool:
        """False when a worker holds the job's lock; JobStateError when the job is a job
        scheduler's next run (BullMQ refuses it, as Node's Queue.remove throws)."""
        if is_queue_key(job_id):  # removing job `meta` would delete the queue's meta hash
            return False
        reply = await self._queue.remove(job_id)
        if isinstance(reply, int) and reply < 0:
            raise refusal(reply, job_id, "removeJob")
        return bool(reply)

    async def promote_job(self, job_id: str) -> None:
        if is_queue_key(job_id):
            return
        job = await self._queue.getJob(job_id)
        if job is not None:
            await job.promote()

    async def pause(self) -> None:
        await self._queue.pause()

    async def resume(self) -> None:
        await self._queue.resume()

    async def is_paused(self) -> bool:
        return bool(await self._queue.isPaused())

    async def count_finished_since(self, state: str, since_ms: int) -> int:
        """Jobs in `completed` or `failed` that finished at or after `since_ms` (retained only)."""
        if state not in ("completed", "failed"):
            raise ValueError(f"count_finished_since: state {state!r} is not completed or failed")
        # BullMQ scores its completed and failed sets by finishedOn.
        return int(await self._queue.client.zcount(self.keys.bullmq(state), since_ms, "+inf"))

    async def workers(self) -> list[BullmqWorker]:
        """Every worker connection on this queue, Node's or bullpen's, as `getWorkers()` finds
        them: CLIENT LIST entries named `<prefix>:<base64 queue>[:w:<worker name>]`."""
        text = await self._queue.client.execute_command("CLIENT", "LIST")
        return parse_client_list(str(text), self.prefix, self.name)

    async def metrics(self, state: str, points: int = 60) -> QueueMetrics:
        """BullMQ's per-minute counts of `completed` or `failed` jobs (newest minute first), as
        Node's `Queue.getMetrics()` reads them; kept by workers with metrics on."""
        if state not in ("completed", "failed"):
            raise ValueError(f"metrics: state {state!r} is not completed or failed")
        key = self.keys.bullmq(f"metrics:{state}")
        # One MULTI: the finish script updates the hash and the list together, in one minute.
        pipe = self._queue.client.pipeline(transaction=True)
        pipe.hmget(key, ["count", "prevTS", "prevCount"])
        pipe.lrange(f"{key}:data", 0, points - 1)
        pipe.llen(f"{key}:data")
        meta, data, stored = await pipe.execute()
        count, prev_ts, prev_count = (int(value or 0) for value in meta)
        return QueueMetrics(count=count, prev_ts_ms=prev_ts, prev_count=prev_count,
                            per_minute=[int(value or 0) for value in data], points=int(stored))

    async def get_schedulers(self) -> list[SchedulerRecord]:
        raw = await self._schedulers.getJobSchedulers(0, -1, True)
        return [SchedulerRecord.from_port(item) for item in raw]

    async def get_scheduler(self, scheduler_id: str) -> SchedulerRecord | None:
        if not await self._queue.client.exists(self.keys.bullmq(f"repeat:{scheduler_id}")):
            return None  # the port's getScheduler fails to unpack a missing record
        raw = await self._schedulers.getScheduler(scheduler_id)
        return SchedulerRecord.from_port(raw) if raw else None

    async def upsert_scheduler(self, scheduler_id: str, task_name: str, data: Any, *,
                               pattern: str | None, every_ms: int | None, tz: str | None,
                               options: JobOptions, keep_next_ms: int | None = None) -> None:
        """Add or replace a scheduler. Its pending tick is replaced by the next fire after now;
        with `keep_next_ms` (a cron scheduler's pending tick, due or not) by that tick itself."""
        repeat: dict[str, Any] = {"pattern": pattern} if pattern else {"every": every_ms}
        if tz:
            repeat["tz"] = tz
        if keep_next_ms is None or not pattern:
            # An `every` scheduler keeps its pending tick by itself (BullMQ's script does it).
            await self._schedulers.upsertJobScheduler(
                scheduler_id, repeat, task_name, data, options.to_port()
            )
            return
        # The port's upsert moves a due instant to now, which renames the tick (its id carries
        # the instant): the due one would be dropped. The same script, with the instant kept:
        opts = options.to_port()
        delayed_opts = self._schedulers._build_next_job_opts(
            keep_next_ms, scheduler_id, {**opts, "repeat": repeat}, 1, None)
        scheduler_opts = {"name": task_name, **repeat}
        await self._schedulers.backend.addJobScheduler(
            scheduler_id, keep_next_ms, json.dumps(data if data is not None else {},
                                                   separators=(",", ":")),
            opts, scheduler_opts, delayed_opts)

    async def remove_scheduler(self, scheduler_id: str) -> None:
        await self._schedulers.removeJobScheduler(scheduler_id)


def _raise_if_full(exc: Exception, what: str) -> None:
    # redis-py turns Redis's "OOM ..." reply into OutOfMemoryError and drops the prefix.
    if isinstance(exc, OutOfMemoryError) or "OOM" in str(exc):
        raise RedisFullError(f"Redis is full (maxmemory reached): {what}; free memory or raise "
                             "maxmemory") from exc
