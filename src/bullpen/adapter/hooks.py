"""What the job runner tells an observer (tracing, metrics) about each attempt, if one is set:
nothing is called, and nothing costs, when none is."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Literal, Protocol

# How an attempt leaves the active state, named as Node's spans and metrics name it:
# complete (moveToFinished), retry (retryJob), delay (moveToDelayed), fail (moveToFinished),
# wait (moveJobFromActiveToWait: handed back at shutdown, no attempt counted).
Operation = Literal["complete", "retry", "delay", "fail", "wait"]


class AttemptObserver(Protocol):
    """One attempt of one job, from fetch to finish; the runner calls it in this order."""

    def next_tick(self, scheduler_id: str) -> AbstractContextManager[None]:
        """Around creating a schedule's next tick (before the handler runs)."""
        ...

    def handled(self, result_json: str | None, error: BaseException | None) -> None:
        """The handler's outcome: its result as JSON, or its error."""
        ...

    def finishing(self, operation: Operation) -> str | None:
        """The finishing script is about to run; the trace context to store in the job's
        `tm` field (retry, delay, fail), or None to store none."""
        ...

    def finished(self, ok: bool) -> None:
        """The finishing script ran (ok) or could not (lock lost, outage, abandoned)."""
        ...

    def close(self) -> None:
        """The attempt is over, whatever happened."""
        ...
