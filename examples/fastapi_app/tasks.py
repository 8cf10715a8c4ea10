"""What the worker runs for this app (BULLPEN_APP=fastapi_app): tasks declared with `@task`."""

from __future__ import annotations

import asyncio
from typing import Any

from bullpen import JobContext, task


@task("reports.build")
async def build_report(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    ctx.log(f"building the report for {data['month']}")
    await asyncio.sleep(0.05)  # stands in for the real work
    return {"month": data["month"], "orders": 3, "revenue": 120}
