"""Handlers that carry their task name (the `@task` decorator's base), found by the loader.

Declaring records the handler with the module that defined it; the loader takes the ones
declared inside the app's package once it has imported `<app>.tasks`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from bullpen.definitions.task import Handler, Task
from bullpen.queue_names import check_queue_name

P = ParamSpec("P")
R = TypeVar("R")

_declared: list[DeclaredTask[Any, Any]] = []


class DeclaredTask(Generic[P, R]):
    """A handler with its task name; calling it calls the handler unchanged."""

    def __init__(self, name: str, handler: Callable[P, R], run_as: Handler | None = None,
                 queue: str | None = None) -> None:
        Task.of(name, handler)  # a handler with the wrong shape fails at import, not at run
        self.name = name
        self.handler = handler
        # The queue its jobs go to (None: the default queue); checked here, at import.
        self.queue = None if queue is None else check_queue_name(queue, f"@task({name!r})")
        # What the worker registers: the handler itself, or a wrapper such as isolated(handler).
        self.run_as: Handler = run_as if run_as is not None else handler
        functools.update_wrapper(self, handler)
        # A module imported again (a reload) declares its tasks again: the new ones replace them.
        _declared[:] = [task for task in _declared if task._key != self._key]
        _declared.append(self)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.handler(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<task {self.name!r}: {getattr(self.handler, '__qualname__', self.handler)}>"

    @property
    def module(self) -> str:
        return str(getattr(self.handler, "__module__", ""))

    @property
    def _key(self) -> tuple[str, str, str]:
        return self.name, self.module, str(getattr(self.handler, "__qualname__", ""))


def declared_in(package: str) -> list[DeclaredTask[Any, Any]]:
    """Tasks declared by modules of `package` (the package itself or below it)."""
    return [task for task in _declared
            if task.module == package or task.module.startswith(package + ".")]


def plain_handler(handler: Handler) -> Handler:
    """The function to run: a declared task's own handler (so async ones are seen as async)."""
    return handler.run_as if isinstance(handler, DeclaredTask) else handler
