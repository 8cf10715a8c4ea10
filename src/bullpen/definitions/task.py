"""Tasks: a name mapped to a handler, and how to call it; the registry of all of them."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bullpen.errors import TaskError
from bullpen.queue_names import check_queue_name

Handler = Callable[..., Any]
DEFAULT_MAX_JOBS_PER_CHILD = 100


class Isolated:
    """A handler to run in a child process of the worker (see `isolated`); calling it calls the
    handler here, unchanged."""

    def __init__(self, handler: Handler, max_jobs_per_child: int) -> None:
        self.handler = handler
        self.max_jobs_per_child = max_jobs_per_child
        functools.update_wrapper(self, handler)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.handler(*args, **kwargs)

    def __repr__(self) -> str:
        return f"isolated({self.handler.__qualname__}, max_jobs_per_child=" \
               f"{self.max_jobs_per_child})"


def isolated(handler: Handler, *, max_jobs_per_child: int = DEFAULT_MAX_JOBS_PER_CHILD
             ) -> Isolated:
    """Run `handler` in a child process (like Node BullMQ's sandboxed processors): a handler
    that holds the GIL or crashes cannot stop the worker renewing its jobs' locks. The children
    form a pool sized to WORKER_CONCURRENCY; each is replaced after `max_jobs_per_child` jobs.

    The child imports the handler by name, so it must be a module-level function.
    """
    if not callable(handler):
        raise TaskError(f"isolated(): {handler!r} is not callable")
    name = f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', '?')}"
    if "<" in name or "?" in name:
        raise TaskError(f"isolated(): {name} cannot be imported by a child process; define the "
                        "handler at module level (not a lambda or a nested function)")
    if not isinstance(max_jobs_per_child, int) or max_jobs_per_child < 1:
        raise TaskError(f"isolated({name}): max_jobs_per_child={max_jobs_per_child!r}, expected "
                        "an integer >= 1")
    return Isolated(handler, max_jobs_per_child)


@dataclass(frozen=True, slots=True)
class Task:
    """A registered handler and how to call it: `f()`, `f(data)` or `f(data, ctx)`, here or, for
    an `isolated` handler, in a child process."""

    name: str
    handler: Handler
    is_async: bool
    arity: int
    isolation: Isolated | None = None

    @classmethod
    def of(cls, name: str, handler: Handler) -> Task:
        if not callable(handler):
            raise TaskError(f"Task {name!r}: handler {handler!r} is not callable")
        isolation = handler if isinstance(handler, Isolated) else None
        function = isolation.handler if isolation else handler
        params = [
            p for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(params) > 2:
            raise TaskError(
                f"Task {name!r}: handler {function.__qualname__} takes {len(params)} arguments "
                "(expected f(), f(data) or f(data, ctx))"
            )
        return cls(name, handler, inspect.iscoroutinefunction(function), len(params), isolation)

    def arguments(self, data: Any, ctx: Any) -> tuple[Any, ...]:
        return (data, ctx)[: self.arity]


class Registry:
    """Task name → Task, and the queue of each task that names one (the rest go to the default
    queue); built once at start-up from bullpen's and the app's modules."""

    def __init__(self, handlers: Mapping[str, Handler],
                 queues: Mapping[str, str] | None = None) -> None:
        self._tasks = {name: Task.of(name, handler) for name, handler in handlers.items()}
        self._queues = dict(queues or {})
        for name, queue in self._queues.items():
            if name not in self._tasks:
                raise TaskError(f"task_queues names task {name!r}, which is not registered "
                                f"(known: {', '.join(self.names())}); check the spelling")
            check_queue_name(queue, f"task {name!r}")

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def queue_of(self, name: str) -> str | None:
        """The queue task `name` is declared on, or None for the default queue."""
        return self._queues.get(name)

    @property
    def queues(self) -> list[str]:
        """Every queue some task is declared on (the default queue not included)."""
        return sorted(set(self._queues.values()))

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks
