"""The app's exporters: rows streamed from its data into CSV or JSON Lines by a worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from bullpen import exporter

# Stands in for the app's database; an async driver's cursor is read the same way.
ORDERS: list[dict[str, Any]] = [
    {"id": 1, "customer": "Ada", "total": 30},
    {"id": 2, "customer": "Grace", "total": 50},
    {"id": 3, "customer": "Linus", "total": 40},
]


class OrderFilter(BaseModel):
    min_total: int = 0


@exporter("orders.csv", columns=("id", "customer", "total"), params=OrderFilter,
          filename="orders")
async def orders(params: OrderFilter) -> AsyncIterator[dict[str, Any]]:
    for row in ORDERS:
        if row["total"] >= params.min_total:
            yield row
