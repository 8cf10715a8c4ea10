"""Throughput on Redis Cluster: the same three tagged queues on one master and on three.

`python -m bench.topologies` drains `--jobs` no-op jobs from each of three queues whose hash
tags land on three different masters, with one `bullpen worker --processes 2` consuming all
three, on a 3-master cluster and on a 1-master cluster (all 16384 slots on one node), the
order alternating per run. It prints one JSON line per drain and a Markdown table of medians
for docs/scaling.md. The failover figures come from the topology tests (`pytest -m topology`,
written to test-artifacts/reliability.json): `--failovers N` runs them N times and prints each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers import ARTIFACTS
from tests.helpers.topologies import Cluster, redis_cluster

from bench import procs
from bench.measure import median
from bullpen.adapter import JobOptions, QueueClient

BATCH = 500
RUN_LIMIT_S = 300.0
POLL_S = 0.01


def tagged_queues(cluster: Cluster) -> list[str]:
    """One queue name per master of `cluster`, in a fixed order of candidates."""
    chosen: dict[int, str] = {}
    for index in range(1000):
        name = f"{{t{index}}}"
        chosen.setdefault(cluster.owner_of(f"bull:{name}:meta"), name)
        if len(chosen) == len(cluster.servers):
            break
    return sorted(chosen.values())


async def _enqueue(url: str, queue: str, jobs: int) -> None:
    client = QueueClient(url, queue)
    try:
        options = JobOptions(keep_completed=0)
        for start in range(0, jobs, BATCH):
            await client.add_bulk([("bench.noop", None, options)] * min(BATCH, jobs - start))
    finally:
        await client.close()


def _remaining(cluster: Cluster, queues: list[str]) -> int:
    total = 0
    for queue in queues:
        client = cluster.server_on(cluster.owner_of(f"bull:{queue}:meta")).client
        total += int(client.llen(f"bull:{queue}:wait")) + int(client.llen(f"bull:{queue}:active"))
    return total


def drain(cluster: Cluster, queues: list[str], jobs: int, workdir: Path) -> dict[str, Any]:
    """Enqueue `jobs` per queue, then time one worker command from its first job to empty."""
    cluster.flush()
    for queue in queues:
        asyncio.run(_enqueue(cluster.url, queue, jobs))
    total = _remaining(cluster, queues)
    env = procs.bullpen_env(cluster.url, queues[0], workdir, WORKER_CONCURRENCY="50")
    args = [procs.BULLPEN, "worker", "--app", "bench.app", "--processes", "2",
            *(arg for queue in queues for arg in ("--queue", queue))]
    service = procs.Service(args, env)
    try:
        started = 0.0
        deadline = time.monotonic() + RUN_LIMIT_S
        while (left := _remaining(cluster, queues)) and time.monotonic() < deadline:
            if not started and left < total:
                started = time.monotonic()
            time.sleep(POLL_S)
        if left:
            raise RuntimeError(f"not drained in {RUN_LIMIT_S} s:\n{service.output()[-2000:]}")
        wall_s = time.monotonic() - started
    finally:
        service.stop()
    return {"masters": len(cluster.servers), "queues": len(queues), "jobs": total,
            "wall_s": round(wall_s, 3), "jobs_per_s": round(total / wall_s)}


@contextlib.contextmanager
def _clusters() -> Iterator[dict[int, Cluster]]:
    with redis_cluster(1) as one, redis_cluster(3) as three:
        yield {1: one, 3: three}


def throughput(runs: int, jobs: int) -> dict[int, list[dict[str, Any]]]:
    results: dict[int, list[dict[str, Any]]] = {1: [], 3: []}
    with _clusters() as clusters, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        queues = tagged_queues(clusters[3])
        for index in range(runs):
            for masters in ((1, 3) if index % 2 == 0 else (3, 1)):
                result = drain(clusters[masters], queues, jobs, Path(tmp))
                results[masters].append(result)
                print(json.dumps(result), flush=True)
    return results


def table(results: dict[int, list[dict[str, Any]]]) -> str:
    base = median([result["jobs_per_s"] for result in results[1]])
    lines = ["| cluster masters | jobs/s (median) | median / 1 master | slowest and fastest |",
             "|---|---|---|---|"]
    for masters, found in results.items():
        rates = [result["jobs_per_s"] for result in found]
        lines.append(f"| {masters} | {median(rates):,.0f} | {median(rates) / base:.2f} "
                     f"| {min(rates):,} to {max(rates):,} |")
    return "\n".join(lines)


def failovers(count: int) -> list[dict[str, Any]]:
    """Run the topology tests `count` times; each run's figures from the artifact."""
    found = []
    for _ in range(count):
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-m",
                        "topology", "tests/system/test_sentinel.py",
                        "tests/system/test_cluster.py"], check=True, cwd=procs.ROOT)
        figures = json.loads((ARTIFACTS / "reliability.json").read_text())
        run = {name: value for name, value in figures.items()
               if name.startswith(("workers_follow", "durable_enqueue", "a_slot_migration",
                                   "a_master_failover"))}
        print(json.dumps(run, sort_keys=True), flush=True)
        found.append(run)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.topologies", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=5000, help="per queue")
    parser.add_argument("--failovers", type=int, default=0)
    args = parser.parse_args()
    if args.runs:
        print(table(throughput(args.runs, args.jobs)))
    failovers(args.failovers)


if __name__ == "__main__":
    main()
