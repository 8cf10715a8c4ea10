"""Real `bullpen` processes for tests, run through the installed entry point."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

BULLPEN = shutil.which("bullpen") or str(Path(sys.executable).parent / "bullpen")


class Proc:
    """A `bullpen …` subprocess whose combined output is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: str | None = None) -> None:
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.popen = subprocess.Popen(
            [BULLPEN, *args], env=full_env, cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.popen.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not seen in output:\n{self.output}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.popen.send_signal(signum)

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(5)

    def wait(self, timeout: float = 20) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(2)
        return code


def start_worker(env: dict[str, str], *extra: str) -> Proc:
    proc = Proc(["worker", *extra], env)
    proc.wait_for("Worker started and ready to process jobs")
    return proc


def run_cli(args: list[str], env: dict[str, str], timeout: float = 30
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BULLPEN, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout, check=False)


def eventually(check: Callable[[], bool], timeout: float = 10, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def recorded_runs(queue: str, url: str | None = None) -> list[dict[str, object]]:
    """The runs the sample app's tasks recorded for this queue, oldest first."""


    connection = redis.Redis.from_url(url or os.environ["BULLPEN_TEST_REDIS_URL"],
                                      decode_responses=True)
    try:
        return [json.loads(item) for item in connection.lrange(f"bull:{queue}:test:runs", 0, -1)]
    finally:
        connection.close()


class Fleet:
    """N `bullpen worker` processes on one env; any of them can be killed or replaced."""

    def __init__(self, env: dict[str, str], size: int) -> None:
        self.env = env
        self.procs = [Proc(["worker"], env) for _ in range(size)]
        self.retired: list[Proc] = []

    def ready(self, text: str = "Worker started and ready", timeout: float = 30) -> None:
        for proc in self.procs:
            proc.wait_for(text, timeout)

    def kill(self, index: int) -> dict[str, Any]:
        """kill -9 worker `index` and start its replacement at once; returns the kill record."""
        proc = self.procs[index]
        proc.kill()
        # Stamped once the process is gone, so every run it started began before this instant.
        killed = {"pid": proc.popen.pid, "at_ms": time.time() * 1000}
        self.retired.append(proc)
        self.procs[index] = Proc(["worker"], self.env)
        return killed

    def terminate(self, index: int) -> None:
        """SIGTERM worker `index`, wait for its drain, start its replacement."""
        proc = self.procs[index]
        proc.signal(signal.SIGTERM)
        proc.wait(30)
        self.retired.append(proc)
        self.procs[index] = Proc(["worker"], self.env)

    def stop(self) -> list[int]:
        """SIGTERM every worker at once and wait for each (kill -9 after 30 s): exit codes."""
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.signal(signal.SIGTERM)
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(-9)
        self.retired.extend(self.procs)
        self.procs = []
        return codes

    def kill_all(self) -> None:
        for proc in self.procs + self.retired:
            proc.kill()

    def output(self) -> str:
        return "\n".join(proc.output for proc in self.retired + self.procs)


@contextlib.contextmanager
def running_worker(env: dict[str, str], *extra: str) -> Iterator[Proc]:
    """A started `bullpen worker`, sent SIGTERM and waited for on the way out."""
    proc = start_worker(env, *extra)
    try:
        yield proc
    finally:
        proc.signal()
        proc.wait()
