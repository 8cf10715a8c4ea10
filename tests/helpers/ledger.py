"""What the topology tests count: enqueues a producer saw acknowledged, and the runs the
topology app wrote to its ledger on the shared test Redis."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import redis

from bullpen import SyncClient
from tests.helpers import APPS_DIR


@dataclass
class Producer:
    """Threads enqueueing `topo.record` jobs with ids `<tag>-<n>` until stopped; each
    acknowledged id is kept with the time (epoch ms) its enqueue returned."""

    client: SyncClient
    tag: str
    threads: int = 2
    pause_s: float = 0.0
    acked: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _running: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Producer:
        self._running = [threading.Thread(target=self._run, args=(index,), daemon=True)
                         for index in range(self.threads)]
        for thread in self._running:
            thread.start()
        return self

    def _run(self, index: int) -> None:
        sequence = 0
        while not self._stop.is_set():
            job_id = f"{self.tag}-{index}-{sequence}"
            sequence += 1
            try:
                self.client.enqueue("topo.record", {}, job_id=job_id)
            except Exception as exc:  # an outage or a durable enqueue refused: not acknowledged
                self.failures.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            self.acked[job_id] = time.time() * 1000
            if self.pause_s:
                time.sleep(self.pause_s)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._running:
            thread.join(10)

    def acked_after(self, at_ms: float) -> list[str]:
        return [job_id for job_id, acked_ms in self.acked.items() if acked_ms > at_ms]


def ledger_env(key: str) -> dict[str, str]:
    """The topology app (tests/apps on PYTHONPATH) and its ledger under `key`."""
    return {"TOPOLOGY_LEDGER_URL": os.environ["BULLPEN_TEST_REDIS_URL"],
            "TOPOLOGY_LEDGER_KEY": key, "BULLPEN_APP": "topology_app",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS_DIR),
                                                        os.environ.get("PYTHONPATH")]))}


def ledger_runs(key: str) -> list[dict[str, Any]]:
    connection = redis.Redis.from_url(os.environ["BULLPEN_TEST_REDIS_URL"],
                                      decode_responses=True)
    try:
        return [json.loads(item) for item in connection.lrange(key, 0, -1)]
    finally:
        connection.close()


def run_counts(runs: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(run["job_id"]) for run in runs)


def present(client: redis.Redis, prefix: str, queue: str, job_ids: list[str]
            ) -> dict[str, dict[str, str]]:
    """The job hashes of `job_ids` that exist on `client`'s server."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hgetall(f"{prefix}:{queue}:{job_id}")
    return {job_id: found for job_id, found in zip(job_ids, pipe.execute(), strict=True)
            if found}


def assert_clean_log(output: str, lost: Collection[str] = (),
                     cut_short: Collection[str] = ()) -> None:
    """No traceback, unretrieved task error, missing lock or worker error; except that a job
    whose hash a failover lost (`lost`) may be reported missing when its run finishes, and a
    job run again because the failover outlasted its lock (`cut_short`) may have lost it."""
    excused = (*(f"Missing key for job {job_id}. " for job_id in lost),
               *(f"Missing lock for job {job_id}. " for job_id in cut_short))
    lines = [line for line in output.splitlines() if not any(text in line for text in excused)]
    for bad in ("Traceback", "Task exception was never retrieved", "Missing lock",
                "Worker error"):
        found = next((index for index, line in enumerate(lines) if bad in line), None)
        assert found is None, f"{bad!r} in the workers' output:\n" + "\n".join(
            lines[max(0, found - 3):found + 25])


@dataclass
class Outcome:
    """What a run of jobs through a failover left: the new master, the producer, the cut."""

    master: redis.Redis
    producer: Producer
    cut_ms: float
    runs: list[dict[str, Any]]
    codes: list[int]
    output: str


def all_done(master: redis.Redis, queue: str, acked: list[str]) -> bool:
    found = present(master, "bull", queue, acked)
    return all("finishedOn" in job for job in found.values())


def check_outcomes(outcome: Outcome, queue: str, report: dict[str, Any],
                   bound_ms: float) -> tuple[list[str], list[str]]:
    """Each acknowledged job's runs against the cut (a failover); the first completion after
    the cut within `bound_ms`. Returns the acknowledged jobs the cut lost, and those it made
    run twice."""
    master, producer, killed_ms, runs = (outcome.master, outcome.producer, outcome.cut_ms,
                                         outcome.runs)
    acked = list(producer.acked)
    found = present(master, "bull", queue, acked)
    counts = run_counts(runs)
    first_run: dict[str, float] = {}
    for run in runs:
        first_run.setdefault(str(run["job_id"]), run["at_ms"])
    write_lost = [job_id for job_id in acked if job_id not in found]
    # Only writes acknowledged before the kill can be missing: later ones went to the new master.
    assert all(producer.acked[job_id] < killed_ms for job_id in write_lost), write_lost
    for job_id, job in found.items():
        assert job.get("returnvalue") == f'{{"ran":"{job_id}"}}', (job_id, job)
        assert counts[job_id] >= 1, job_id
    twice = sorted(job_id for job_id in found if counts[job_id] > 1)
    # A second run only for a job whose first run began before the kill (its finish, or the
    # lock, was on the old master alone): BullMQ's stalled rule gives it back.
    assert all(first_run[job_id] < killed_ms for job_id in twice), twice
    never_ran = [job_id for job_id in acked if counts[job_id] == 0]
    recovered_ms = min(float(job["finishedOn"]) for job in found.values()
                       if float(job["finishedOn"]) > killed_ms) - killed_ms
    assert recovered_ms <= bound_ms, recovered_ms
    report.update(jobs_acknowledged=len(acked), acknowledged_then_lost=len(write_lost),
                  jobs_never_run=len(never_ran), jobs_run_twice=len(twice),
                  kill_to_first_completion_ms=round(recovered_ms),
                  enqueue_failures_during_failover=len(producer.failures))
    return write_lost, twice
