"""Adding jobs: BullMQ's add scripts called with each options value normalised and packed once.

The port's `Queue.add` and `addBulk` build a `Job` per job, then encode and msgpack the same
options again every time; for a batch of 1,000 that Python work cost more than Redis running
the scripts. Here a plain job (no delay, no priority) costs one JSON dump and one small
msgpack of its arguments, sent as the very EVALSHA the port would send. Delayed and
prioritised jobs take the port's own path (in the same MULTI for a bulk add).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import bullmq
import msgpack

from bullpen.adapter.options import JobOptions

# The keys of BullMQ's addStandardJob script, in its order (the port's `addStandardJob`).
_STANDARD_KEYS = ("wait", "paused", "meta", "id", "completed", "delayed", "active", "events",
                  "marker")


class JobAdder:
    """Adds jobs to one queue, one or many at a time; packed options are kept per JobOptions."""

    def __init__(self, queue: bullmq.Queue) -> None:
        self._queue = queue
        self._scripts = queue.backend.scripts
        self._standard = self._scripts.commands["addStandardJob"]
        self._keys = self._scripts.getKeys(list(_STANDARD_KEYS))
        self._prefix = self._scripts.keys[""]
        self._packed: dict[JobOptions, bytes] = {}

    async def add(self, name: str, data: Any, options: JobOptions) -> str:
        """One job; its id (an existing job's, when `options.job_id` is taken)."""
        if options.delay_ms or options.priority:
            return str(await self._scripts.addJob(self._job(name, data, options)))
        # The script object runs EVALSHA, and loads the script first if Redis lost it.
        return str(await self._standard(keys=self._keys, args=self._args(name, data, options)))

    async def add_many(self, jobs: Sequence[tuple[str, Any, JobOptions]]) -> list[str]:
        """Every job in one MULTI/EXEC; their ids in order."""
        async with self._queue.client.pipeline(transaction=True) as pipe:
            # Loads the script first if Redis lost it, as the port's own call would.
            pipe.scripts.add(self._standard)
            for name, data, options in jobs:
                if options.delay_ms or options.priority:
                    await self._scripts.addJob(self._job(name, data, options), pipe)
                else:
                    pipe.evalsha(self._standard.sha, len(self._keys), *self._keys,
                                 *self._args(name, data, options))
            added = await pipe.execute()
        return [str(job_id) for job_id in added]

    def _args(self, name: str, data: Any, options: JobOptions) -> list[Any]:
        """addStandardJob's arguments, as the port's `addJobArgs` packs them for a plain job."""
        timestamp = round(time.time() * 1000)
        packed_args = msgpack.packb(
            [self._prefix, options.job_id or "", name, timestamp, None, None, None, None, None],
            use_bin_type=True)
        data_json = json.dumps(data, separators=(",", ":"), allow_nan=False)
        return [packed_args, data_json, self._packed_options(options), timestamp]

    def _packed_options(self, options: JobOptions) -> bytes:
        packed = self._packed.get(options)
        if packed is None:
            # The port's own normalisation (defaults, backoff) and short names, as it stores them.
            job = self._job("", None, options)
            packed = msgpack.packb(self._scripts.encodeOpts(job.opts))
            if options.job_id is None and len(self._packed) < 64:
                self._packed[options] = packed
        return packed

    def _job(self, name: str, data: Any, options: JobOptions) -> bullmq.Job:
        opts = options.to_port()
        return bullmq.Job(self._queue, name, data, opts, opts.get("jobId"))
