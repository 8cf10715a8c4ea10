"""`bullpen worker --processes N`: N worker processes under one command, signals forwarded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

from bullpen import logs

log = logs.get("worker")

RESTART_DELAY_S = 1.0


class Supervisor:
    """Starts the children, restarts one that dies on its own, and drains them all on SIGTERM."""

    def __init__(self, count: int, app: str | None) -> None:
        self.count = count
        self.command = [sys.executable, "-m", "bullpen", "worker"]
        if app:
            self.command += ["--app", app]
        # The children run one process each; WORKER_PROCESSES must not make them fork again.
        self.env = {**os.environ, "WORKER_PROCESSES": "1"}
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, env=self.env)

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signum)

    def run(self) -> int:
        """Run until the children exit after a signal; 0 if every child exited cleanly."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._forward)
        self.children = [self._spawn() for _ in range(self.count)]
        log.info("Started %d worker processes (pids %s)", self.count,
                 ", ".join(str(child.pid) for child in self.children))
        codes: dict[int, int] = {}
        while len(codes) < len(self.children):
            for index, child in enumerate(self.children):
                code = child.poll()
                if code is None or index in codes:
                    continue
                if self.stopping:
                    codes[index] = code
                    continue
                log.warning("Worker process %d exited with %d; starting another in %.0f s",
                            child.pid, code, RESTART_DELAY_S)
                time.sleep(RESTART_DELAY_S)
                if not self.stopping:
                    self.children[index] = self._spawn()
            time.sleep(0.05)
        return 0 if all(code == 0 for code in codes.values()) else 1


def run_processes(count: int, app: str | None) -> int:
    return Supervisor(count, app).run()
