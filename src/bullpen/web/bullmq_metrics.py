"""BullMQ's own per-minute metrics of a queue (`metrics:completed`, `metrics:failed`), read as
Node's `Queue.getMetrics()` reads them and laid out on epoch minutes.

BullMQ's finish script keeps them when a worker runs with `metrics: {maxDataPoints}` (bullpen's
WORKER_METRICS_MAX_DATA_POINTS): a hash `{count, prevTS, prevCount}` and a list of closed
minutes, newest first, whose head is the minute before `prevTS`'s. The jobs counted since
`prevTS` (count - prevCount) all finished in `prevTS`'s minute and are not in the list yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bullpen.adapter import QueueClient

MINUTE_MS = 60_000
OUTCOMES = ("completed", "failed")


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    """Jobs finished per epoch minute; `recorded` is False when no worker keeps the metrics."""

    recorded: bool
    total: int = 0
    per_minute: dict[int, int] = field(default_factory=dict)


def lay_out(count: int, prev_ts_ms: int, prev_count: int, data: list[int]) -> dict[int, int]:
    """BullMQ's metrics hash and list as {epoch minute: jobs}; minutes between are zero."""
    pending_minute = prev_ts_ms // MINUTE_MS
    laid = {pending_minute - 1 - index: value for index, value in enumerate(data)}
    laid[pending_minute] = count - prev_count
    return laid


async def read_metrics(client: QueueClient, outcome: str, minutes: int) -> MinuteCounts:
    """The last `minutes` closed minutes BullMQ keeps for `outcome`, plus the current one."""
    if outcome not in OUTCOMES:
        raise ValueError(f"BullMQ metrics: {outcome!r} is not one of {', '.join(OUTCOMES)}")
    raw = await client.metrics(outcome, max(minutes, 1))
    if not raw.prev_ts_ms:  # the first job a worker with metrics on finishes sets prevTS
        return MinuteCounts(recorded=False)
    return MinuteCounts(True, raw.count, lay_out(raw.count, raw.prev_ts_ms, raw.prev_count,
                                                 raw.per_minute))
