"""Tasks: a name mapped to a handler, and how to call it; the registry of all of them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bullpen.errors import TaskError

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Task:
    """A registered handler and how to call it: `f()`, `f(data)` or `f(data, ctx)`."""

    name: str
    handler: Handler
    is_async: bool
    arity: int

    @classmethod
    def of(cls, name: str, handler: Handler) -> Task:
        if not callable(handler):
            raise TaskError(f"Task {name!r}: handler {handler!r} is not callable")
        params = [
            p for p in inspect.signature(handler).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(params) > 2:
            raise TaskError(
                f"Task {name!r}: handler {handler.__qualname__} takes {len(params)} arguments "
                "(expected f(), f(data) or f(data, ctx))"
            )
        return cls(name, handler, inspect.iscoroutinefunction(handler), len(params))

    def arguments(self, data: Any, ctx: Any) -> tuple[Any, ...]:
        return (data, ctx)[: self.arity]


class Registry:
    """Task name → Task; built once at start-up from bullpen's and the app's modules."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._tasks = {name: Task.of(name, handler) for name, handler in handlers.items()}

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks
