"""`bullpen worker --processes N`: N workers under one command, drained together on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time

import psutil

from bullpen.adapter import JobOptions, QueueClient
from tests.helpers.processes import recorded_runs, start_worker


async def test_processes_share_the_queue_and_drain_on_sigterm(
        app_env: dict[str, str], client: QueueClient) -> None:
    worker = start_worker(app_env, "--processes", "2")
    try:
        worker.wait_for("Started 2 worker processes")
        children = psutil.Process(worker.popen.pid).children()
        assert len(children) == 2
        # Both children have to be consuming before the jobs go in, or one may take them all.
        deadline = time.monotonic() + 20
        while worker.output.count("Worker started and ready") < 2:
            assert time.monotonic() < deadline, worker.output
            await asyncio.sleep(0.05)
        for index in range(40):
            await client.add("test.slow", {"sleep_s": 0.05, "i": index}, JobOptions())
        deadline = time.monotonic() + 20
        while len([run for run in recorded_runs(client.name)
                   if run.get("event") == "end"]) < 40:
            assert time.monotonic() < deadline, worker.output
            await asyncio.sleep(0.05)
        await client.add("test.slow", {"sleep_s": 1.0}, JobOptions())
        worker.wait_for("of type test.slow", 10)
        await asyncio.sleep(0.3)
    finally:
        worker.signal(signal.SIGTERM)
        code = worker.wait(30)
    assert code == 0
    ends = [run for run in recorded_runs(client.name) if run.get("event") == "end"]
    assert len(ends) == 41  # the job running at SIGTERM finished before the exit
    assert worker.output.count("Worker stopped") == 2
    assert not [child for child in children if child.is_running()
                and child.status() != psutil.STATUS_ZOMBIE]
