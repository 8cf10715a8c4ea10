"""`python -m bench`: every benchmark side by side with Node BullMQ; writes docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.helpers.redis_server import private_redis

from bench import cleanup, cron, enqueue, export, report, throughput, topologies
from bench.procs import ROOT

ALL = ("throughput", "enqueue", "cron", "cleanup", "export")
# Run only when named: they start servers of their own (a Redis Cluster).
EXTRA = ("topologies",)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(ALL),
                        help="comma-separated: " + ", ".join(ALL + EXTRA))
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per figure")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--ticks", type=int, default=65)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    sections: dict[str, Any] = {}
    with private_redis() as server, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        if "throughput" in wanted:
            for key, pinned in (("throughput", False), ("throughput_pinned", True)):
                raw = throughput.run(server, work, args.runs, (1, 50), args.jobs, pinned=pinned)
                sections[key] = _summarise(raw)
        if "enqueue" in wanted:
            sections["enqueue"] = enqueue.run(server, args.runs)
        if "cron" in wanted:
            sections["cron"] = cron.run(server, work, args.ticks)
        if "cleanup" in wanted:
            sections["cleanup"] = cleanup.run(server, work, args.runs)
            sections["lateness"] = cleanup.lateness_during(server, work)
        if "export" in wanted:
            sections["export"] = export.run(server, work, args.runs)
    if "topologies" in wanted:
        sections["topologies"] = topologies.table(topologies.throughput(args.runs, 5000))
    command = "python -m bench" + ("" if wanted == set(ALL) else f" --only {args.only}")
    report.write(args.out, report.render(command, sections))
    json.dump(sections, sys.stdout, indent=1, default=str)
    print(f"\nwrote {args.out}")


def _summarise(raw: dict[str, dict[str, list[throughput.RunResult]]]
               ) -> dict[str, dict[str, dict[str, float]]]:
    return {concurrency: {side: throughput.summary(results) for side, results in sides.items()}
            for concurrency, sides in raw.items()}


if __name__ == "__main__":
    main()
