"""Every Redis key bullpen owns, per queue, beside BullMQ's own keys for that queue.

BullMQ keeps a queue under `<prefix>:<queue>:<suffix>`; bullpen's keys sit under
`<prefix>:<queue>:bullpen:`, so they share the queue's hash tag (one Redis Cluster slot) and a
queue's keys can be listed or removed together.
"""

from __future__ import annotations

from dataclasses import dataclass

from bullpen.errors import ClusterKeyError


def hash_tag_end(key: str) -> int | None:
    """Where the hash tag of `key` ends (the index of its `}`), or None without one: Redis
    hashes only the text between the first `{` and the next `}`, when it is not empty."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return end if end > start + 1 else None


def check_cluster_keys(prefix: str, queues: list[str]) -> None:
    """Under Redis Cluster every key of a queue must hash to one slot, as BullMQ's scripts
    need: the prefix or the queue name carries a hash tag. ClusterKeyError names each queue
    that does not, with the two fixes."""
    untagged = [queue for queue in queues
                if (end := hash_tag_end(f"{prefix}:{queue}:")) is None
                or end > len(prefix) + len(queue)]
    if untagged:
        names = ", ".join(repr(queue) for queue in untagged)
        raise ClusterKeyError(
            f"WORKER_REDIS_URL is a Redis Cluster, and the keys of queue"
            f"{'s' if len(untagged) > 1 else ''} {names} "
            f"({prefix}:{untagged[0]}:…) carry no hash tag, so BullMQ's scripts would span hash "
            f"slots. Fix: WORKER_PREFIX={{{prefix}}} (every queue in one slot), or queue names "
            f"in braces such as {{{untagged[0]}}} (each queue its own slot, spread over the "
            "masters)")


@dataclass(frozen=True, slots=True)
class Keyspace:
    """Key names for one queue; `bullmq(suffix)` is BullMQ's own, the properties bullpen's."""

    prefix: str
    queue: str

    def bullmq(self, suffix: str) -> str:
        """A key of BullMQ's layout for this queue (`failed`, `repeat:<id>`, `meta`, …)."""
        return f"{self.prefix}:{self.queue}:{suffix}"

    def _own(self, suffix: str) -> str:
        return f"{self.prefix}:{self.queue}:bullpen:{suffix}"

    @property
    def owned_schedules(self) -> str:
        """Hash: schedule name → fingerprint of what bullpen registered (reconcile)."""
        return self._own("schedules")

    @property
    def schedules_lock(self) -> str:
        """Mutex held while one worker reconciles the schedules."""
        return self._own("schedules:lock")

    @property
    def schedule_runs(self) -> str:
        """Hash: schedule name → JSON of its last run (lateness, duration, outcome)."""
        return self._own("schedules:runs")

    def schedule_lateness(self, name: str) -> str:
        """List (with a TTL): JSON of one schedule's most recent runs, newest first."""
        return self._own(f"schedules:lateness:{name}")

    def series_slot(self, step_min: int, minute: int) -> str:
        """Hash (with a TTL): the tasks that have a tally for the `step_min` minutes starting at
        epoch minute `minute` (runtime/series.py)."""
        return self._own(f"series:{step_min}m:{minute}")

    def series_tally(self, step_min: int, minute: int, task: str) -> str:
        """Hash (with a TTL): one task's counters in that slot: outcomes, wait and run time
        histogram buckets."""
        return self._own(f"series:{step_min}m:{minute}:{task}")

    @property
    def task_stats(self) -> str:
        """Hash: `<task>|<counter>` → count, flushed by workers with their heartbeats."""
        return self._own("stats")

    @property
    def workers(self) -> str:
        """Sorted set: worker id → time of its last heartbeat."""
        return self._own("workers")

    def worker(self, worker_id: str) -> str:
        """String (JSON, with a TTL): one worker's heartbeat."""
        return self._own(f"worker:{worker_id}")

    @property
    def cleanup_lock(self) -> str:
        """Mutex held by the one export cleanup running (task or command)."""
        return self._own("cleanup:lock")

    @property
    def cleanup_last(self) -> str:
        """String (JSON): the last cleanup's report."""
        return self._own("cleanup:last")

    @property
    def cleanup_stats(self) -> str:
        """Hash: deleted_files, deleted_bytes, summed over every cleanup."""
        return self._own("cleanup:stats")

    @property
    def enqueue_mark(self) -> str:
        """String written after a bulk enqueue when durable: WAIT on the writing connection."""
        return self._own("enqueue:mark")

    @property
    def cancel_channel(self) -> str:
        """Pub/sub channel: cancel requests (JSON: job id, lock token, reason) for the workers."""
        return self._own("cancel")

    def cancel_request(self, job_id: str) -> str:
        """String (JSON, with a TTL): a cancel request for one run of a job (its lock token),
        read by a worker that (re)subscribes, so a request sent while it was away counts."""
        return self._own(f"cancel:{job_id}")

    def web_session(self, digest: str) -> str:
        """String (with a TTL): one dashboard sign-in, named by the SHA-256 of its session id."""
        return self._own(f"web:session:{digest}")
