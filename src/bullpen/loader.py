"""The one place that imports task and schedule definitions: bullpen's own and the app's.

Worker, web, CLI and doctor all start here. The app (`BULLPEN_APP`) is imported by name from
the installed packages and, after them, the working directory, so a stray module in the
working directory never shadows an installed package.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bullpen.definitions.schedule import ScheduledJob, validate
from bullpen.definitions.task import Handler, Registry
from bullpen.errors import TaskError
from bullpen.schedules import scheduled_jobs
from bullpen.tasks import task_handlers


@dataclass(frozen=True, slots=True)
class Definitions:
    """Every task and validated schedule a process knows: bullpen's own plus the app's."""

    registry: Registry
    schedules: list[ScheduledJob]


def _make_app_importable() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)


def import_attribute(module_name: str, attribute: str, required: bool) -> Any:
    """`module.attribute`, or None when the module is absent and not required."""
    _make_app_importable()
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
    handlers: dict[str, Handler] = dict(task_handlers)
    if app:
        extra = import_attribute(f"{app}.tasks", "task_handlers", required=False)
        if extra is not None:
            if not isinstance(extra, Mapping):
                raise TaskError(f"{app}.tasks.task_handlers must be a dict, got {type(extra)}")
            handlers.update(extra)
    return Registry(handlers)


def importable_registry(app: str | None) -> Registry | None:
    """The full registry when the app's tasks can be imported, else None (check skipped).

    A web process that enqueues need not ship the worker's code: with BULLPEN_APP unset, or
    its package not importable here, callers skip the task-name check. An app whose tasks
    import but fail to load still raises TaskError: that is a bug to see, not to skip.
    """
    if not app:
        return None
    try:
        return load_registry(app)
    except TaskError as exc:
        missing = exc.__cause__
        if isinstance(missing, ModuleNotFoundError) and missing.name is not None and (
                app == missing.name or app.startswith(missing.name + ".")):
            return None
        raise


def load_schedules(app: str | None, registry: Registry) -> list[ScheduledJob]:
    """bullpen's scheduled_jobs plus `<app>.schedules.scheduled_jobs`, validated."""
    items = list(scheduled_jobs)
    if app:
        extra = import_attribute(f"{app}.schedules", "scheduled_jobs", required=False)
        if extra is not None:
            items.extend(extra)
    return validate(items, registry)


def load_definitions(app: str | None) -> Definitions:
    """The registry and the validated schedules; raises TaskError or ScheduleError."""
    registry = load_registry(app)
    return Definitions(registry, load_schedules(app, registry))
