"""What the worker runs for this project (BULLPEN_APP=django_app, DJANGO_SETTINGS_MODULE set)."""

from __future__ import annotations

import os
from typing import Any

import django
from django.db import close_old_connections

from bullpen import JobContext, task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")
django.setup()  # the worker is not a Django process: load the project before using the ORM

from django_app.models import Order  # noqa: E402 - only once Django is set up


@task("orders.confirm")
def confirm_order(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A plain def: it runs in a worker thread, where Django's ORM may block."""
    close_old_connections()
    try:
        order = Order.objects.get(pk=data["order_id"])  # exists: enqueued after commit
        order.status = "confirmed"
        order.save(update_fields=["status"])
        ctx.log(f"order {order.pk} confirmed")
        return {"order_id": order.pk, "total": order.total}
    finally:
        close_old_connections()
