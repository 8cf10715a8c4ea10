"""Tasks declared with the decorator: one async, one plain def."""

from __future__ import annotations

import os
import threading
from typing import Any

from bullpen import JobContext, task


@task("client.add")
async def add(data: dict[str, Any]) -> int:
    return int(data["a"]) + int(data["b"])


@task("client.shout")
def shout(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    ctx.log("shouting")
    return {"text": str(data.get("text", "")).upper(),
            "in_thread": threading.current_thread() is not threading.main_thread()}


@task("client.where", isolated=True, max_jobs_per_child=5)
def where(data: dict[str, Any]) -> dict[str, int]:
    """Which process ran it: an isolated task runs in a child of the worker."""
    return {"pid": os.getpid(), "parent": os.getppid()}
