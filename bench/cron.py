"""Cron lateness: a 1-second schedule (`* * * * * *`) on bullpen and on Node, side by side."""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers.redis_server import PrivateRedis

from bench import procs
from bench.measure import percentile


def lateness_ms(server: PrivateRedis, queue: str) -> list[float]:
    """What the tick handlers recorded: start time minus the tick's due time, in ms."""
    return [float(value) for value in server.client.lrange(f"bench:{queue}:lateness", 0, -1)]


def stats(values: list[float]) -> dict[str, float]:
    return {"ticks": len(values), "p50": percentile(values, 0.5),
            "p99": percentile(values, 0.99), "max": max(values) if values else float("nan")}


def run(server: PrivateRedis, workdir: Path, ticks: int = 65) -> dict[str, dict[str, float]]:
    """Both schedulers run at once on their own queues for `ticks` seconds plus warm-up."""
    server.reset()
    node = procs.node_worker(server.url, "cron-node", 1, "lateness")
    procs.node_run("scheduler.cjs", server.url, "cron-node", "bench-tick")
    bullpen = procs.bullpen_worker(server.url, "cron-bullpen", workdir, 1, BENCH_CRON="1")
    try:
        time.sleep(3)  # both past their first tick
        for queue in ("cron-node", "cron-bullpen"):
            server.client.delete(f"bench:{queue}:lateness")
        time.sleep(ticks + 0.5)
    finally:
        bullpen.stop()
        node.stop()
    result = {"bullpen": stats(lateness_ms(server, "cron-bullpen")),
              "node": stats(lateness_ms(server, "cron-node"))}
    print(f"  cron: {result}", flush=True)
    return result
