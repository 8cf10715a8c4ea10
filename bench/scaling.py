"""Throughput of one queue drained by 1, 2 and 4 worker processes (`--processes`), side by side.

`python -m bench.scaling` prints one JSON line per drain and a Markdown table of medians (jobs/s
and the ratio to one process) for docs/scaling.md. The runs of each sitting rotate the order of
the process counts, so a slower stretch of the machine does not favour one of them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from tests.helpers.redis_server import private_redis

from bench import throughput
from bench.measure import median

PROCESSES = (1, 2, 4)
# The limiter (10 jobs/s by default) and BullMQ's per-minute metrics would measure themselves.
UNTHROTTLED = {"WORKER_LIMITER_MAX": "0", "WORKER_METRICS_MAX_DATA_POINTS": "0",
               "LOG_LEVEL": "INFO"}


def run(runs: int, jobs: int, concurrency: int) -> dict[int, list[throughput.RunResult]]:
    """`runs` drains per process count, the order rotated each run."""
    results: dict[int, list[throughput.RunResult]] = {count: [] for count in PROCESSES}
    with private_redis() as server, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for index in range(runs):
            shift = index % len(PROCESSES)
            for count in PROCESSES[shift:] + PROCESSES[:shift]:
                server.reset()
                queue = f"scale-p{count}-{index}"
                start = throughput._starter("bullpen", server, queue, Path(tmp), concurrency,
                                            count, UNTHROTTLED)
                result = throughput.drain(server, queue, jobs, start)
                results[count].append(result)
                print(json.dumps({"processes": count, **asdict(result)}), flush=True)
    return results


def table(results: dict[int, list[throughput.RunResult]]) -> str:
    """Medians, and the median of each run's ratio to that run's single process: the runs of
    one rotation are minutes apart, so their ratio suffers least from a busier machine."""
    base = median([result.jobs_per_s for result in results[1]])
    lines = ["| worker processes | jobs/s (median) | median / 1 process | ratio to 1 process "
             "within a run (median) | slowest and fastest run |", "|---|---|---|---|---|"]
    for count, found in results.items():
        rates = [result.jobs_per_s for result in found]
        within = median([rate / one.jobs_per_s for rate, one in zip(rates, results[1],
                                                                      strict=True)])
        lines.append(f"| {count} | {median(rates):,.0f} | {median(rates) / base:.2f} "
                     f"| {within:.2f} | {min(rates):,.0f} to {max(rates):,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    args = parser.parse_args()
    print(table(run(args.runs, args.jobs, args.concurrency)))


if __name__ == "__main__":
    main()
