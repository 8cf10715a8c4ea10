"""Queue names as bullpen accepts them, and `NAME[=CONCURRENCY]` worker queue specs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bullpen.errors import QueueNameError

MAX_NAME_LENGTH = 200
MAX_CONCURRENCY = 10_000
# BullMQ refuses ':' (its key separator); ',' and '=' separate WORKER_QUEUES entries; '/' would
# split the dashboard's /q/<queue>/ paths.
_NAME = re.compile(r"[^:\s,=/]+")


def check_queue_name(name: object, where: str) -> str:
    """`name` if it can name a queue; QueueNameError saying `where` it came from otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise QueueNameError(
            f"{where}: queue name {name!r} cannot be used; expected 1 to {MAX_NAME_LENGTH} "
            "characters without ':', '/', ',', '=' or spaces, such as 'exports'")
    return name


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue a worker consumes, with its own concurrency (None: WORKER_CONCURRENCY)."""

    name: str
    concurrency: int | None = None

    def __str__(self) -> str:
        return self.name if self.concurrency is None else f"{self.name}={self.concurrency}"


def parse_queue_spec(text: str, where: str) -> QueueSpec:
    """`exports` or `exports=2` (two jobs at once on that queue)."""
    name, sep, raw = text.strip().partition("=")
    check_queue_name(name, where)
    if not sep:
        return QueueSpec(name)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CONCURRENCY:
        raise QueueNameError(
            f"{where}: {text.strip()!r} has concurrency {raw!r}; expected NAME or NAME=N with N "
            f"from 1 to {MAX_CONCURRENCY}, such as 'exports=2'")
    return QueueSpec(name, int(raw))


def parse_queue_specs(texts: list[str], where: str) -> list[QueueSpec]:
    """Several specs; a queue named twice is refused (which concurrency would win?)."""
    specs: list[QueueSpec] = []
    for text in texts:
        spec = parse_queue_spec(text, where)
        if any(known.name == spec.name for known in specs):
            raise QueueNameError(f"{where}: queue {spec.name!r} is named twice; name each queue "
                                 "once")
        specs.append(spec)
    return specs
