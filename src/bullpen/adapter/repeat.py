"""Job schedulers: bullpen's cron for the port's JobScheduler, and the worker-side step that
makes a tick's job produce the next tick before it runs (as Node's worker does)."""

from __future__ import annotations

from typing import Any

from bullmq.job import optsEncodeMap, optsFromJSON
from bullmq.job_scheduler import JobScheduler

from bullpen import cron
from bullpen.adapter.protocol import QueueCommands, pack


def repeat_strategy(millis: int, opts: dict[str, Any]) -> int | None:
    """Next fire time for a cron pattern, in Node's dialect (bullpen's cron module)."""
    pattern = opts.get("pattern")
    if not pattern:
        return None
    start = opts.get("startDate")
    base = max(millis, int(start)) if isinstance(start, int | float) else millis
    return cron.next_fire_ms(pattern, base, opts.get("tz"))


class _SchedulerBackend:
    """The one backend call JobScheduler makes for a next iteration, on the worker's
    command connection."""

    def __init__(self, commands: QueueCommands) -> None:
        self._commands = commands

    async def updateJobSchedulerNextMillis(  # noqa: N802 - the port's name
            self, job_scheduler_id: str, next_millis: int, template_data: str,
            delayed_job_opts: dict[str, Any], producer_id: str | None = None) -> Any:
        encoded = {optsEncodeMap.get(key, key): value for key, value in delayed_job_opts.items()}
        return await self._commands.update_scheduler(job_scheduler_id, next_millis,
                                                     template_data, pack(encoded), producer_id)


class _SchedulerQueue:
    """What JobScheduler (and the port's Job it builds) reads from a queue."""

    def __init__(self, commands: QueueCommands) -> None:
        self.backend = _SchedulerBackend(commands)
        self.qualifiedName = commands.job_key_prefix.rstrip(":")
        self.opts: dict[str, Any] = {}


class NextIteration:
    """Upserts a scheduler's next iteration from the tick's job, keeping any pending one."""

    def __init__(self, commands: QueueCommands) -> None:
        self._scheduler = JobScheduler(_SchedulerQueue(commands),
                                       repeat_strategy=repeat_strategy)

    async def schedule(self, scheduler_id: str, job_id: str, name: str, data: Any,
                       raw_opts: dict[str, Any]) -> None:
        opts = optsFromJSON(raw_opts)  # a new dict: the job's own opts stay as they are
        await self._scheduler.upsertJobScheduler(
            scheduler_id, opts.get("repeat"), name, data, opts, override=False,
            producer_id=job_id)
