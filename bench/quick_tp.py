"""Ad-hoc: one throughput drain per side (for profiling sessions; not part of the report)."""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from tests.helpers.redis_server import private_redis

from bench import throughput


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=throughput.SIDES, default="bullpen")
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("-n", "--jobs", type=int, default=20_000)
    parser.add_argument("-p", "--processes", type=int, default=None)
    parser.add_argument("-e", "--env", action="append", default=[], help="KEY=VALUE for bullpen")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    with private_redis() as server, tempfile.TemporaryDirectory() as tmp:
        server.reset()
        queue = f"quick-{args.side}"
        starter = throughput._starter(args.side, server, queue, Path(tmp), args.concurrency,
                                      args.processes, extra)
        print(json.dumps(asdict(throughput.drain(server, queue, args.jobs, starter))))


if __name__ == "__main__":
    main()
