"""Export: 1,000,000 rows to CSV through the `exports.create` task vs a plain csv.writer loop."""

from __future__ import annotations

import asyncio
import csv
import tempfile
import time
from pathlib import Path

from tests.helpers.redis_server import PrivateRedis

from bench import procs
from bench.app.rows import COLUMNS, make_rows
from bench.measure import median
from bullpen.adapter import JobOptions, QueueClient


def plain_csv_s(rows: int) -> float:
    """The floor: csv.writer over the same generated rows, into a file."""
    with tempfile.NamedTemporaryFile("w", newline="", suffix=".csv") as handle:
        started = time.perf_counter()
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in make_rows(rows):
            writer.writerow([row[column] for column in COLUMNS])
        handle.flush()
        return time.perf_counter() - started


async def _task_s(url: str, queue: str, rows: int) -> float:
    """processedOn to finishedOn of one `exports.create` job run by a bullpen worker."""
    client = QueueClient(url, queue)
    try:
        job_id = await client.add("exports.create", {
            "exporter": "bench.rows", "format": "csv", "params": {"rows": rows}},
            JobOptions(attempts=1))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            record = await client.get_job(job_id)
            if record is not None and record.state == "failed":
                raise RuntimeError(f"export failed: {record.failed_reason}")
            if record is not None and record.duration_ms is not None:
                return record.duration_ms / 1000
            await asyncio.sleep(0.1)
        raise RuntimeError("export did not finish in 600 s")
    finally:
        await client.close()


def run(server: PrivateRedis, workdir: Path, runs: int, rows: int = 1_000_000
        ) -> dict[str, float]:
    """Median seconds for each side, alternating, with one worker serving every task run."""
    server.reset()
    worker = procs.bullpen_worker(server.url, "export", workdir, 1)
    task: list[float] = []
    plain: list[float] = []
    try:
        for index in range(runs):
            for side in ("task", "plain") if index % 2 == 0 else ("plain", "task"):
                if side == "task":
                    task.append(asyncio.run(_task_s(server.url, "export", rows)))
                else:
                    plain.append(plain_csv_s(rows))
            print(f"  export: task {task[-1]:.2f} s, plain {plain[-1]:.2f} s", flush=True)
    finally:
        worker.stop()
    return {"exports.create_s": median(task), "csv.writer_s": median(plain)}
