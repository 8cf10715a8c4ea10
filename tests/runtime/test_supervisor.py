"""`bullpen worker --processes N` and `--dev`: one stop request of any shape drains each child once.

Shapes: a terminal's Ctrl-C (SIGINT to the foreground process group), `kill -TERM -<pgid>`
(supervisord's stopasgroup) and systemd's KillMode=control-group (SIGTERM to every process of
the service at once). Each runs a job longer than the lock when the signal comes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from bullpen.adapter import JobOptions, QueueClient
from bullpen.runtime.stop import STOP_SIGNALS
from bullpen.runtime.supervisor import Supervisor
from tests.helpers.processes import Proc, recorded_runs, start_worker

JOB_S = 3.0  # longer than the test lock (WORKER_LOCK_DURATION_MS=2000)
MARGIN_S = 3.0


def _terminal_ctrl_c(proc: Proc) -> None:
    os.killpg(proc.popen.pid, signal.SIGINT)


def _group_sigterm(proc: Proc) -> None:
    os.killpg(proc.popen.pid, signal.SIGTERM)


def _control_group_sigterm(proc: Proc) -> None:
    tree = [psutil.Process(proc.popen.pid), *psutil.Process(proc.popen.pid).children(True)]
    for member in tree:
        member.send_signal(signal.SIGTERM)


SHAPES: dict[str, Callable[[Proc], None]] = {
    "ctrl-c": _terminal_ctrl_c, "kill-group": _group_sigterm,
    "control-group": _control_group_sigterm,
}


async def _until(check: Callable[[], bool], proc: Proc, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, proc.output
        await asyncio.sleep(0.05)


def _runs(queue: str, job_id: str, event: str) -> int:
    return sum(1 for run in recorded_runs(queue)
               if run.get("job_id") == job_id and run.get("event") == event)


async def _start(args: list[str], env: dict[str, str], children: int) -> Proc:
    proc = Proc(["worker", *args], env)
    await _until(lambda: proc.output.count("Worker started and ready") >= children, proc)
    return proc


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("args", [["--processes", "2"], ["--dev"], []],
                         ids=["processes", "dev", "single"])
async def test_one_stop_request_drains_each_child_once(
        app_env: dict[str, str], client: QueueClient, args: list[str], shape: str) -> None:
    proc = await _start(args, app_env, 2 if "--processes" in args else 1)
    try:
        job_id = await client.add("test.slow", {"sleep_s": JOB_S}, JobOptions(attempts=1))
        proc.wait_for(f"Processing job {job_id}")
        await asyncio.sleep(0.5)
        signalled = time.monotonic()
        SHAPES[shape](proc)
        code = proc.wait(float(app_env["WORKER_SHUTDOWN_TIMEOUT_S"]) + MARGIN_S)
        elapsed_s = time.monotonic() - signalled
    finally:
        proc.kill()
    assert code == 0, proc.output
    assert elapsed_s < JOB_S + MARGIN_S
    record = await client.get_job(job_id)
    assert record is not None and record.state == "completed", proc.output
    assert record.return_value == "done"
    queue = app_env["WORKER_DEFAULT_QUEUE"]
    assert (_runs(queue, job_id, "start"), _runs(queue, job_id, "end")) == (1, 1)
    for bad in ("Second stop request", "Traceback", "Missing lock", "Worker error"):
        assert bad not in proc.output


async def test_a_second_request_from_a_person_stops_at_once(
        app_env: dict[str, str], client: QueueClient) -> None:
    proc = await _start(["--processes", "2"], app_env, 2)
    try:
        job_id = await client.add("test.slow", {"sleep_s": 30}, JobOptions(attempts=1))
        proc.wait_for(f"Processing job {job_id}")
        _terminal_ctrl_c(proc)
        proc.wait_for("no new jobs; finishing active ones")
        await asyncio.sleep(1.5)  # a person's second Ctrl-C, after the first one's copies
        _terminal_ctrl_c(proc)
        forced = time.monotonic()
        code = proc.wait(MARGIN_S)
        assert time.monotonic() - forced < 2
    finally:
        proc.kill()
    assert code == 1
    assert "Second stop request (SIGINT): exiting now" in proc.output


async def test_processes_share_the_queue_and_are_reaped(
        app_env: dict[str, str], client: QueueClient) -> None:
    worker = start_worker(app_env, "--processes", "2")
    try:
        worker.wait_for("Started 2 worker processes")
        children = psutil.Process(worker.popen.pid).children()
        assert len(children) == 2
        # Both children have to be consuming before the jobs go in, or one may take them all.
        await _until(lambda: worker.output.count("Worker started and ready") >= 2, worker)
        for index in range(40):
            await client.add("test.slow", {"sleep_s": 0.05, "i": index}, JobOptions())
        await _until(lambda: len([run for run in recorded_runs(client.name)
                                  if run.get("event") == "end"]) >= 40, worker)
    finally:
        worker.signal(signal.SIGTERM)
        code = worker.wait(30)
    assert code == 0
    assert worker.output.count("Worker stopped") == 2
    assert not [child for child in children if child.is_running()
                and child.status() != psutil.STATUS_ZOMBIE]


async def test_children_drain_when_the_supervisor_is_killed(
        app_env: dict[str, str], client: QueueClient) -> None:
    proc = await _start(["--processes", "2"], app_env, 2)
    children = psutil.Process(proc.popen.pid).children()
    job_id = await client.add("test.slow", {"sleep_s": 1}, JobOptions(attempts=1))
    proc.wait_for(f"Processing job {job_id}")
    proc.popen.send_signal(signal.SIGKILL)  # the supervisor only: its children have own groups
    proc.wait(5)
    _, alive = psutil.wait_procs(children, timeout=float(app_env["WORKER_SHUTDOWN_TIMEOUT_S"])
                                 + MARGIN_S)
    assert not alive
    record = await client.get_job(job_id)
    assert record is not None and record.state == "completed"


def _one_change() -> Iterator[set[str]]:
    """A file watch that sees one change, then none: the first child is replaced once."""
    yield {"changed.py"}
    while True:
        time.sleep(0.05)
        yield set()


@pytest.mark.parametrize("moment", ["start", "reload"])
def test_a_stop_request_that_lands_while_a_child_is_spawned_still_reaches_it(
        moment: str) -> None:
    # The handler signals the children in the list; one being spawned is not in it yet. Before,
    # the supervisor then waited for that child forever (possibly why a `--dev` test once did not
    # stop within 30 s of its Ctrl-C).
    supervisor = Supervisor(1, None, watch=[Path(os.getcwd())] if moment == "reload" else None)
    supervisor.command = [sys.executable, "-c", "import time; time.sleep(30)"]
    spawn = supervisor._spawn
    spawned: list[subprocess.Popen[bytes]] = []

    def spawn_as_the_request_lands() -> subprocess.Popen[bytes]:
        child = spawn()
        spawned.append(child)
        if len(spawned) == (2 if moment == "reload" else 1):
            supervisor._on_signal(signal.SIGTERM, None)
        return child

    supervisor._spawn = spawn_as_the_request_lands  # type: ignore[method-assign]
    if moment == "reload":
        supervisor._changes = _one_change  # type: ignore[method-assign]

    def kill_all() -> None:
        for child in spawned:
            child.kill()

    watchdog = threading.Timer(10, kill_all)
    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    watchdog.start()
    try:
        assert supervisor.run() == 1  # the child ends by the SIGTERM it was sent
    finally:
        watchdog.cancel()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert len(spawned) == (2 if moment == "reload" else 1)
    assert spawned[-1].returncode == -signal.SIGTERM  # not the watchdog's SIGKILL
