"""bullpen's own task handlers (a Node BullMQ app's `taskHandlers`); apps add `<app>.tasks`."""

from bullpen.definitions.task import Handler
from bullpen.tasks.cleanup_exports import cleanup_exports
from bullpen.tasks.create_export import create_export
from bullpen.tasks.health_check import health_check

task_handlers: dict[str, Handler] = {
    "exports.cleanup": cleanup_exports,
    "exports.create": create_export,
    "health.check": health_check,
}
