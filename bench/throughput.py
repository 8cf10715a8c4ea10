"""Worker throughput: pre-enqueued no-op jobs drained by bullpen, Node BullMQ and the port's
own worker, one command each, optionally pinned to CPUs."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.helpers.redis_server import PrivateRedis

from bench import procs
from bench.measure import TreeSampler, median

POLL_S = 0.005
RUN_LIMIT_S = 180.0


@dataclass(frozen=True, slots=True)
class RunResult:
    """One drain of the queue by one worker command."""

    jobs: int
    wall_s: float
    jobs_per_s: float
    evalsha_per_job: float
    commands_per_job: float
    cpu_ms_per_job: float
    peak_rss_mb: float
    peak_rss_per_process_mb: float


def enqueue(server: PrivateRedis, queue: str, jobs: int) -> int:
    """Bulk-add `jobs` no-op jobs (plus the script's one warm-up job); returns the waiting count."""
    procs.node_run("enqueue.cjs", server.url, queue, "0", str(jobs), "1000")
    return int(server.client.llen(f"bull:{queue}:wait"))


def drain(server: PrivateRedis, queue: str, jobs: int,
          start: Callable[[], procs.Service]) -> RunResult:
    """Time the worker from its first job taken to an empty queue; read commandstats there."""
    total = enqueue(server, queue, jobs)
    server.client.config_resetstat()
    service = start()
    sampler = TreeSampler(service.pid).start()
    polls = 0
    try:
        deadline = time.monotonic() + RUN_LIMIT_S
        started = cpu_start = 0.0
        while time.monotonic() < deadline:
            pipe = server.client.pipeline(transaction=False)
            pipe.llen(f"bull:{queue}:wait")
            pipe.llen(f"bull:{queue}:active")
            waiting, active = pipe.execute()
            polls += 1
            now = time.monotonic()
            if not started and waiting < total:
                started, cpu_start = now, sampler.cpu_s()
            if started and waiting == 0 and active == 0:
                break
            time.sleep(POLL_S)
        else:
            raise RuntimeError(f"{queue}: not drained in {RUN_LIMIT_S} s")
        wall_s = time.monotonic() - started
        cpu_s = sampler.cpu_s() - cpu_start
        calls = server.command_calls()
    finally:
        sampler.stop()
        service.stop()
    calls["llen"] = calls.get("llen", 0) - 2 * polls  # the harness's own polling
    worker_calls = sum(count for name, count in calls.items()
                       if name not in ("config|resetstat", "info"))
    return RunResult(
        jobs=total, wall_s=wall_s, jobs_per_s=total / wall_s,
        evalsha_per_job=calls.get("evalsha", 0) / total,
        commands_per_job=worker_calls / total, cpu_ms_per_job=cpu_s * 1000 / total,
        peak_rss_mb=sampler.peak_rss_bytes / 2**20,
        peak_rss_per_process_mb=sampler.peak_rss_per_process_bytes / 2**20,
    )


SIDES = ("node", "bullpen", "bullpen-p2", "port")
# Pinned runs: Redis, the harness and the producer on CPU 0, the worker under test on CPU 1.
DRIVER_CPU, WORKER_CPU = 0, 1


def run(server: PrivateRedis, workdir: Path, runs: int, concurrencies: tuple[int, ...],
        jobs: int, sides: tuple[str, ...] = SIDES, pinned: bool = False
        ) -> dict[str, dict[str, list[RunResult]]]:
    """Every side `runs` times per concurrency, in an order that rotates between runs."""
    results: dict[str, dict[str, list[RunResult]]] = {}
    with _pinned_driver(server) if pinned else contextlib.nullcontext():
        for concurrency in concurrencies:
            by_side: dict[str, list[RunResult]] = {side: [] for side in sides}
            for index in range(runs):
                for side in sides[index % len(sides):] + sides[:index % len(sides)]:
                    server.reset()
                    queue = f"tp-{side}-{concurrency}-{index}"
                    start = _starter(side, server, queue, workdir, concurrency,
                                     cpus=str(WORKER_CPU) if pinned else None)
                    result = drain(server, queue, jobs, start)
                    by_side[side].append(result)
                    print(f"  throughput c={concurrency} {side}{' pinned' if pinned else ''}: "
                          f"{json.dumps(asdict(result))}", flush=True)
            results[str(concurrency)] = by_side
    return results


@contextlib.contextmanager
def _pinned_driver(server: PrivateRedis) -> Iterator[None]:
    """Redis and this harness (and the producers it starts) on one CPU while the block runs."""
    everywhere = os.sched_getaffinity(0)
    assert server.process is not None
    for pid in (0, server.process.pid):
        os.sched_setaffinity(pid, {DRIVER_CPU})
    try:
        yield
    finally:
        for pid in (0, server.process.pid):
            os.sched_setaffinity(pid, everywhere)


def _starter(side: str, server: PrivateRedis, queue: str, workdir: Path, concurrency: int,
             processes: int | None = None, env: dict[str, str] | None = None,
             cpus: str | None = None) -> Callable[[], procs.Service]:
    if side == "node":
        return lambda: procs.node_worker(server.url, queue, concurrency, cpus=cpus)
    if side == "port":
        return lambda: procs.port_worker(server.url, queue, concurrency, cpus=cpus)
    count = 2 if side == "bullpen-p2" else processes
    return lambda: procs.bullpen_worker(server.url, queue, workdir, concurrency, count, cpus,
                                        **(env or {}))


def summary(results: list[RunResult]) -> dict[str, float]:
    """Median of each figure over the runs."""
    fields = ("jobs_per_s", "evalsha_per_job", "commands_per_job", "cpu_ms_per_job",
              "peak_rss_mb", "peak_rss_per_process_mb")
    return {name: median([getattr(result, name) for result in results]) for name in fields}
