"""Declared recurring jobs (`scheduled_jobs`, as in BullMQ apps) and their validation."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bullpen import cron
from bullpen.definitions.task import Registry
from bullpen.errors import QueueNameError, ScheduleError
from bullpen.queue_names import check_queue_name


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """Run task `task_name` with `data` on a cron `pattern` (or every `every_ms`) in zone `tz`,
    on `queue` (None: the task's queue, which is the default queue unless the task names one)."""

    name: str
    task_name: str
    pattern: str | None = None
    every_ms: int | None = None
    tz: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None

    def queue_in(self, registry: Registry) -> str | None:
        """The queue its ticks run on: its own, else its task's; None for the default queue."""
        return self.queue or registry.queue_of(self.task_name)

    @property
    def repeat_text(self) -> str:
        return self.pattern if self.pattern else f"every {self.every_ms} ms"

    def problems(self, registry: Registry) -> list[str]:
        """Every reason this schedule cannot be registered, each naming it."""
        found: list[str] = []
        if not self.name or ":" in self.name:
            found.append(f"name {self.name!r} must be non-empty and contain no ':'")
        if self.task_name not in registry:
            found.append(f"unknown task {self.task_name!r} (known: {', '.join(registry.names())})")
        if (self.pattern is None) == (self.every_ms is None):
            found.append("set exactly one of pattern or every_ms")
        elif self.pattern is not None:
            try:
                cron.check_pattern(self.pattern)
            except ValueError as exc:
                found.append(str(exc))
        elif not isinstance(self.every_ms, int) or self.every_ms < 1:
            found.append(f"every_ms={self.every_ms!r} must be a positive integer")
        if self.queue is not None:
            try:
                check_queue_name(self.queue, "queue")
            except QueueNameError as exc:
                found.append(str(exc))
        try:
            cron.zone(self.tz)
        except ValueError as exc:
            found.append(str(exc))
        try:
            json.dumps(self.data)
        except (TypeError, ValueError) as exc:
            found.append(f"data is not JSON-serialisable ({exc})")
        return [f"Schedule {self.name!r}: {problem}" for problem in found]


def validate(schedules: Iterable[ScheduledJob], registry: Registry) -> list[ScheduledJob]:
    """Return the schedules, or raise one ScheduleError listing every problem found."""
    items = list(schedules)
    problems: list[str] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, ScheduledJob):
            problems.append(f"{item!r} is not a ScheduledJob")
            continue
        if item.name in seen:
            problems.append(f"Schedule {item.name!r}: duplicate schedule name")
        seen.add(item.name)
        problems.extend(item.problems(registry))
    if problems:
        raise ScheduleError("\n".join(problems))
    return items
