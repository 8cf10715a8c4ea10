"""A test app declared with `@task` and `@exporter` only (no task_handlers dict)."""
