"""What the worker runs for this app (BULLPEN_APP=flask_app)."""

from __future__ import annotations

from typing import Any

from bullpen import JobContext, task
from flask_app.db import Order, SessionLocal


@task("orders.confirm")
def confirm_order(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A plain def: it runs in a worker thread, so a blocking database session is fine."""
    with SessionLocal.begin() as session:
        order = session.get(Order, data["order_id"])
        if order is None:  # never happens when the job is enqueued after commit
            raise LookupError(f"order {data['order_id']} does not exist")
        order.status = "confirmed"
        ctx.log(f"order {order.id} confirmed")
        return {"order_id": order.id, "total": order.total}
