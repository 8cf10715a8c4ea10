"""Exporters declared with the decorator: a sync generator (read in a thread) and an async one."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import BaseModel

from bullpen import exporter

ORDERS: list[dict[str, Any]] = [{"id": i, "customer": f"c{i % 3}", "total": i * 10}
                               for i in range(1, 8)]


class OrderParams(BaseModel):
    min_total: int = 0


@exporter("client.orders", columns=("id", "customer", "total", "on_loop_thread"),
          params=OrderParams, filename="orders", page_size=3)
def orders(params: OrderParams) -> Iterator[dict[str, Any]]:
    """Stands in for a database cursor: blocking reads, one row at a time."""
    on_loop = threading.current_thread() is threading.main_thread()
    for row in ORDERS:
        if row["total"] >= params.min_total:
            yield {**row, "on_loop_thread": on_loop}


@exporter("client.numbers")
async def numbers(params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    for i in range(int(params.get("count", 3))):
        yield {"n": i}
