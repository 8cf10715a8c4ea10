"""Enqueue speed: single `add` calls and bulk adds, bullpen's QueueClient vs Node's Queue."""

from __future__ import annotations

import asyncio
import json
import time

from tests.helpers.redis_server import PrivateRedis

from bench import procs
from bench.measure import median
from bullpen.adapter import JobOptions, QueueClient

# The same options on both sides: bullpen's defaults for the jobs it enqueues.
OPTIONS = JobOptions(attempts=3, backoff_delay_ms=1000, keep_completed=1000, keep_failed=5000)


async def _bullpen(url: str, queue: str, single: int, bulk: int, size: int) -> dict[str, float]:
    client = QueueClient(url, queue)
    try:
        await client.add("bench.noop", {"i": -1}, OPTIONS)  # warm-up: scripts loaded
        started = time.perf_counter()
        for index in range(single):
            await client.add("bench.noop", {"i": index}, OPTIONS)
        single_s = time.perf_counter() - started
        started = time.perf_counter()
        for first in range(0, bulk, size):
            await client.add_bulk([("bench.noop", {"i": i}, OPTIONS)
                                   for i in range(first, min(bulk, first + size))])
        bulk_s = time.perf_counter() - started
    finally:
        await client.close()
    return {"single_s": single_s, "bulk_s": bulk_s}


def run(server: PrivateRedis, runs: int, single: int = 5000, bulk: int = 20_000,
        size: int = 1000) -> dict[str, dict[str, float]]:
    """Jobs per second, medians over `runs` alternating runs."""
    rates: dict[str, dict[str, list[float]]] = {
        side: {"single": [], "bulk": []} for side in ("bullpen", "node")}
    for index in range(runs):
        for side in ("bullpen", "node") if index % 2 == 0 else ("node", "bullpen"):
            server.reset()
            queue = f"enq-{side}-{index}"
            if side == "node":
                out = procs.node_run("enqueue.cjs", server.url, queue, str(single), str(bulk),
                                     str(size))
                timing = json.loads(out.strip().splitlines()[-1])
            else:
                timing = asyncio.run(_bullpen(server.url, queue, single, bulk, size))
            rates[side]["single"].append(single / timing["single_s"])
            rates[side]["bulk"].append(bulk / timing["bulk_s"])
            print(f"  enqueue {side}: {timing}", flush=True)
    return {side: {kind: median(values) for kind, values in kinds.items()}
            for side, kinds in rates.items()}
