"""Cleanup: `bullpen cleanup-exports` vs `find -mmin +N -delete`, and job lateness meanwhile."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers.redis_server import PrivateRedis

from bench import procs
from bench.cron import lateness_ms, stats
from bench.measure import median
from bullpen.adapter import JobOptions, QueueClient

AGE_HOURS = 24
OLD_S = 48 * 3600
TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"  # GNU time (apt: time)


def make_exports(directory: Path, files: int) -> None:
    """`files` bullpen export files (data + meta pairs); every other pair is two days old."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    now = time.time()
    for index in range(files // 2):
        created = now - OLD_S if index % 2 else now
        export_id = f"{int(created * 1000):013d}-{secrets.token_hex(8)}"
        for kind in ("data", "meta"):
            path = directory / f"bp-{export_id}.{kind}"
            path.write_bytes(b"x")
            os.utime(path, (created, created))
    os.sync()  # the creation's writeback must not land inside the timed run


def _timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, the RSS from GNU time's wait4.

    Not this harness's own wait4: a child forked from it counts its memory from before exec.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        started = time.monotonic()
        code = subprocess.call([TIME, "-f", "%M", "-o", report.name, *args],
                               env={**os.environ, **(env or {})}, cwd=procs.ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall_s = time.monotonic() - started
        if code != 0:
            raise RuntimeError(f"{args[:3]} exited with {code}")
        return wall_s, int(report.read().split()[-1]) / 1024


def run(server: PrivateRedis, workdir: Path, runs: int, files: int = 200_000
        ) -> dict[str, dict[str, float]]:
    """Alternating runs over a fresh directory each; medians of wall time and peak RSS."""
    directory = workdir / "exports"
    env = procs.bullpen_env(server.url, "cleanup", workdir)
    sides = {
        "bullpen": [procs.BULLPEN, "cleanup-exports", "--older-than", str(AGE_HOURS)],
        "find": ["find", str(directory), "-type", "f", "-mmin", f"+{AGE_HOURS * 60}", "-delete"],
    }
    results: dict[str, dict[str, list[float]]] = {side: {"wall_s": [], "rss_mb": []}
                                                  for side in sides}
    for index in range(runs):
        for side in ("bullpen", "find") if index % 2 == 0 else ("find", "bullpen"):
            make_exports(directory, files)
            wall_s, rss_mb = _timed(sides[side], env)
            left = len(os.listdir(directory))
            assert left == files // 2, f"{side} left {left} files"
            results[side]["wall_s"].append(wall_s)
            results[side]["rss_mb"].append(rss_mb)
            print(f"  cleanup {side}: {wall_s:.2f} s, {rss_mb:.1f} MB", flush=True)
    return {side: {name: median(values) for name, values in figures.items()}
            for side, figures in results.items()}


async def _produce(url: str, queue: str, seconds: float, with_cleanup: bool) -> None:
    """A `bench.lateness` job every 20 ms, stamped with its enqueue time, for `seconds`; with
    a cleanup, one second in, and on until that cleanup job has finished (at most 300 s)."""
    client = QueueClient(url, queue)
    try:
        started = time.monotonic()
        cleanup_id: str | None = None
        sent = 0
        while time.monotonic() - started < (300 if with_cleanup else seconds):
            if with_cleanup and cleanup_id is None and time.monotonic() - started >= 1:
                cleanup_id = await client.add("exports.cleanup",
                                              {"older_than_hours": AGE_HOURS}, JobOptions())
            await client.add("bench.lateness", {"due_ms": time.time() * 1000}, JobOptions())
            await asyncio.sleep(0.02)
            sent += 1
            if cleanup_id is not None and sent % 25 == 0:  # is the cleanup done? every ~0.5 s
                record = await client.get_job(cleanup_id)
                if record is not None and record.state in ("completed", "failed"):
                    break
    finally:
        await client.close()


def lateness_during(server: PrivateRedis, workdir: Path, files: int = 200_000,
                    seconds: float = 8.0) -> dict[str, dict[str, float]]:
    """Pick-up lateness of other jobs in one worker, without and with a cleanup running."""
    results = {}
    for label, with_cleanup in (("without cleanup", False), ("during cleanup", True)):
        server.reset()
        make_exports(workdir / "exports", files)
        queue = f"lateness-{label.split()[0]}"
        worker = procs.bullpen_worker(server.url, queue, workdir, 5)
        try:
            asyncio.run(_produce(server.url, queue, seconds, with_cleanup))
            time.sleep(0.5)
        finally:
            worker.stop()
        results[label] = stats(lateness_ms(server, queue))
        results[label]["files_left"] = len(os.listdir(workdir / "exports"))
        print(f"  lateness {label}: {results[label]}", flush=True)
    return results
