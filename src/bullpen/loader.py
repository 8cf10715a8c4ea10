"""The one place that imports the app's definitions: tasks, schedules and exporters.

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
from types import ModuleType
from typing import Any

from bullpen.definitions.declared import declared_in, plain_handler
from bullpen.definitions.schedule import ScheduledJob, validate
from bullpen.definitions.task import Handler, Registry
from bullpen.errors import TaskError
from bullpen.exports import function_exporter
from bullpen.exports.exporters import Exporter, exporters
from bullpen.schedules import scheduled_jobs
from bullpen.settings import Settings
from bullpen.tasks import task_handlers
from bullpen.tasks.create_export import export_task


@dataclass(frozen=True, slots=True)
class Definitions:
    """Every task and validated schedule a process knows: bullpen's own plus the app's."""

    registry: Registry
    schedules: list[ScheduledJob]

    def schedules_on(self, queue: str, default_queue: str) -> list[ScheduledJob]:
        """The schedules whose ticks run on `queue`."""
        return [item for item in self.schedules
                if (item.queue_in(self.registry) or default_queue) == queue]

    def queues(self, settings: Settings) -> list[str]:
        """Every queue bullpen knows of: the default queue first, then those of WORKER_QUEUES,
        of declared tasks and of declared schedules, by name."""
        default = settings.worker_default_queue
        named = {spec.name for spec in settings.queue_specs} | set(self.registry.queues) | {
            item.queue_in(self.registry) or default for item in self.schedules}
        return [default, *sorted(named - {default})]


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


def _optional_module(module_name: str) -> ModuleType | None:
    """The module, or None when it does not exist (an import error inside it still raises)."""
    _make_app_importable()
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise TaskError(f"cannot import {module_name!r}: {exc}") from exc


def _add(handlers: dict[str, Handler], name: str, handler: Handler, where: str) -> None:
    known = handlers.get(name)
    if known is not None and plain_handler(known) is not plain_handler(handler) and \
            name not in task_handlers:
        raise TaskError(f"task {name!r} is declared twice ({where}); give one of them another "
                        "name")
    handlers[name] = plain_handler(handler)


def load_exporters(app: str | None) -> dict[str, Exporter]:
    """bullpen's exporters plus the app's: `<app>.exporters.exporters` (a list) and every
    `@exporter` declared in the app's package."""
    found: dict[str, Exporter] = dict(exporters)
    module = _optional_module(f"{app}.exporters") if app else None
    if app is None or module is None:
        return found
    listed = getattr(module, "exporters", [])
    if isinstance(listed, Mapping):
        listed = list(listed.values())
    for item in [*listed, *function_exporter.declared_in(app)]:
        if not hasattr(item, "pages") or not isinstance(getattr(item, "name", None), str):
            raise TaskError(f"{app}.exporters: {item!r} is not an exporter (use @exporter)")
        found[item.name] = item
    return found


def _task_queues(app: str, module: ModuleType | None) -> dict[str, str]:
    """Task → queue: `<app>.tasks.task_queues`, and the `queue=` of each `@task`."""
    listed = getattr(module, "task_queues", {}) if module is not None else {}
    if not isinstance(listed, Mapping):
        raise TaskError(f"{app}.tasks.task_queues must be a dict of task name → queue name, "
                        f"got {type(listed)}")
    queues = {str(name): queue for name, queue in listed.items()}
    for declared in declared_in(app):
        if declared.queue is None:
            continue
        if queues.get(declared.name, declared.queue) != declared.queue:
            raise TaskError(f"task {declared.name!r} is put on queue {declared.queue!r} by @task "
                            f"in {declared.module} and on {queues[declared.name]!r} by "
                            f"{app}.tasks.task_queues; name its queue in one place")
        queues[declared.name] = declared.queue
    return queues


def load_registry(app: str | None) -> Registry:
    """bullpen's task_handlers, extended (and overridable) by the app's: `<app>.tasks`'s
    `task_handlers` dict and every `@task` declared in the app's package; `exports.create`
    sees the app's exporters. Queues come from `task_queues` and `@task(queue=…)`."""
    handlers: dict[str, Handler] = dict(task_handlers)
    if not app:
        return Registry(handlers)
    module = _optional_module(f"{app}.tasks")
    extra = getattr(module, "task_handlers", {}) if module is not None else {}
    if not isinstance(extra, Mapping):
        raise TaskError(f"{app}.tasks.task_handlers must be a dict, got {type(extra)}")
    for name, handler in extra.items():
        _add(handlers, name, handler, f"in {app}.tasks.task_handlers")
    for declared in declared_in(app):
        _add(handlers, declared.name, declared, f"by @task in {declared.module}")
    app_exporters = load_exporters(app)
    if app_exporters.keys() != exporters.keys():
        handlers["exports.create"] = export_task(app_exporters)
    return Registry(handlers, _task_queues(app, module))


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
