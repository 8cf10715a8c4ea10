"""Synthetic rows shared by the export benchmark's two sides, and an exporter yielding them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from bullpen.exports.exporters import ExportSource, Page

COLUMNS = ("id", "name", "email", "amount", "created_at", "status")
_STATUSES = ("active", "paused", "closed")


def make_rows(count: int) -> Iterator[dict[str, Any]]:
    """`count` rows of six columns: ints, text, a float and an ISO timestamp."""
    for i in range(count):
        yield {"id": i, "name": f"user {i}", "email": f"user{i}@example.com",
               "amount": i * 0.25, "created_at": f"2026-01-{i % 28 + 1:02d}T12:00:00+00:00",
               "status": _STATUSES[i % 3]}


class SyntheticRows:
    """Exporter `bench.rows`: params {"rows": N, "page_size": P}."""

    name = "bench.rows"
    default_filename = "bench-rows"
    columns: tuple[str, ...] = COLUMNS

    def parse_params(self, params: Mapping[str, Any]) -> dict[str, int]:
        return {"rows": int(params.get("rows", 1000)),
                "page_size": int(params.get("page_size", 5000))}

    async def pages(self, source: ExportSource, params: dict[str, int]) -> AsyncIterator[Page]:
        page: Page = []
        for row in make_rows(params["rows"]):
            page.append(row)
            if len(page) >= params["page_size"]:
                yield page
                page = []
        if page:
            yield page
