"""The task registry: task names mapped to handlers, bullpen's defaults extended by the app's."""

from __future__ import annotations

import importlib
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


def import_attribute(module_name: str, attribute: str, required: bool) -> Any:
    """`module.attribute`, or None when the module is absent and not required."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if not required and exc.name == module_name:
            return None  # the app has no such module: nothing to add
        raise TaskError(f"cannot import {module_name!r}: {exc}") from exc
    if not hasattr(module, attribute):
        raise TaskError(f"module {module_name!r} has no {attribute!r} (expected a "
                        f"{'dict' if attribute == 'task_handlers' else 'list'} named {attribute})")
    return getattr(module, attribute)


def load_registry(app: str | None) -> Registry:
    """bullpen's task_handlers, extended (and overridable) by `<app>.tasks.task_handlers`."""
    from bullpen.tasks import task_handlers

    handlers: dict[str, Handler] = dict(task_handlers)
    if app:
        extra = import_attribute(f"{app}.tasks", "task_handlers", required=False)
        if extra is not None:
            if not isinstance(extra, Mapping):
                raise TaskError(f"{app}.tasks.task_handlers must be a dict, got {type(extra)}")
            handlers.update(extra)
    return Registry(handlers)
