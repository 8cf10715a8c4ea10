"""The app's task handlers; bullpen merges them with its own (exports.cleanup, health.check)."""

from __future__ import annotations

from typing import Any

from bullpen import JobContext, task


def send_digest(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A plain `def` handler: bullpen runs it in a thread, so blocking I/O is fine here."""
    recipients = data.get("recipients", ["team@example.com"])
    ctx.log(f"sending the digest to {len(recipients)} recipient(s)")
    return {"sent": len(recipients)}


async def warm_cache(data: dict[str, Any]) -> str:
    """An `async def` handler taking only the job data: it runs on the worker's event loop."""
    return f"warmed {data.get('keys', 0)} keys"


@task("invoice.send")  # the job's name in Redis: `bullpen enqueue` and Node producers use it too
def send_invoice(data: dict[str, Any]) -> str:
    return f"invoice {data['order_id']} sent"


# A slow task on a queue of its own: a worker started with `--queue reports` runs it, so long
# reports never hold up the default queue's jobs. `bullpen enqueue`, the client and the
# dashboard send its jobs there by themselves.
@task("report.build", queue="reports")
def build_report(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    ctx.log(f"building the report for {data.get('month', 'this month')}")
    return {"month": data.get("month"), "rows": 3}


task_handlers = {
    "digest.send": send_digest,
    "cache.warm": warm_cache,
}
