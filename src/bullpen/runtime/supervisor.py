"""`bullpen worker --processes N` and `--dev`: worker children, one stop request each, reloads.

The children run in process groups of their own, so a terminal's Ctrl-C or a signal to the
command's process group reaches only this supervisor, which passes each stop request on once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from bullpen import logs
from bullpen.runtime.stop import PARENT_ENV, STOP_SIGNALS, StopRequests

log = logs.get("worker")

RESTART_DELAY_S = 1.0
POLL_S = 0.05
WATCH_TIMEOUT_MS = 200


class Supervisor:
    """Starts the children, restarts one that dies on its own (or, with `watch`, reloads them
    all when a .py file changes), and drains them all on one stop request."""

    def __init__(self, count: int, app: str | None, watch: list[Path] | None = None,
                 queues: list[str] | None = None) -> None:
        self.count = count
        self.watch = watch
        self.command = [sys.executable, "-m", "bullpen", "worker"]
        if app:
            self.command += ["--app", app]
        for queue in queues or []:
            self.command += ["--queue", queue]
        # The children run one process each; WORKER_PROCESSES must not make them fork again.
        self.env = {**os.environ, "WORKER_PROCESSES": "1", PARENT_ENV: str(os.getpid())}
        self.children: list[subprocess.Popen[bytes]] = []
        self.requests = StopRequests()
        self._asked: set[int] = set()
        self._stop_signal = signal.SIGTERM

    @property
    def stopping(self) -> bool:
        return self.requests.requested

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, env=self.env, process_group=0)

    def _signal_children(self, signum: int, force: bool = False) -> None:
        """Signal each live child once per stop (`force`: again, which stops it at once)."""
        for child in self.children:
            if child.poll() is None and (force or child.pid not in self._asked):
                self._asked.add(child.pid)
                child.send_signal(signum)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        request = self.requests.register()
        if request == 1:
            self._stop_signal = signal.Signals(signum)
        if request:
            self._signal_children(signum, force=request > 1)

    def run(self) -> int:
        """Run until the children exit after a stop request; 0 if every child exited cleanly."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        self.children = [self._spawn() for _ in range(self.count)]
        log.info("Started %d worker process%s (pid %s)", self.count,
                 "es" if self.count > 1 else "",
                 ", ".join(str(child.pid) for child in self.children))
        changes = self._changes()
        reported: set[int] = set()
        while not (self.stopping and all(child.poll() is not None for child in self.children)):
            if self.stopping:
                # A child spawned as the request came was not in the list the handler signalled.
                self._signal_children(self._stop_signal)
            for index, child in enumerate(self.children):
                code = child.poll()
                if code is None or self.stopping or child.pid in reported:
                    continue
                if self.watch is None:
                    self._restart(index, code)
                else:
                    log.warning("Worker process %d exited with %d; restarting when a .py file "
                                "changes", child.pid, code)
                    reported.add(child.pid)
            if next(changes) and not self.stopping:
                self._reload()
        failed = [child for child in self.children if child.returncode != 0]
        for child in failed:
            log.warning("Worker process %d exited with %s", child.pid, child.returncode)
        return 1 if failed else 0

    def _restart(self, index: int, code: int) -> None:
        log.warning("Worker process %d exited with %d; starting another in %.0f s",
                    self.children[index].pid, code, RESTART_DELAY_S)
        time.sleep(RESTART_DELAY_S)
        if not self.stopping:
            self.children[index] = self._spawn()

    def _reload(self) -> None:
        """Drain every child (each finishes its active jobs), then start fresh ones."""
        log.info("[dev] .py files changed: restarting the worker")
        self._signal_children(signal.SIGTERM)
        for child in self.children:
            while child.poll() is None:
                time.sleep(POLL_S)
        if not self.stopping:
            self.children = [self._spawn() for _ in range(self.count)]

    def _changes(self) -> Iterator[set[Any]]:
        """Yields the changed .py files under `watch`, or an empty set about every 200 ms."""
        if self.watch is None:
            return _ticks()
        # Imported here: only development mode watches files.
        from watchfiles import PythonFilter, watch  # noqa: PLC0415

        log.info("[dev] watching %s for .py changes", ", ".join(map(str, self.watch)))
        return watch(*self.watch, watch_filter=PythonFilter(), rust_timeout=WATCH_TIMEOUT_MS,
                     yield_on_timeout=True, raise_interrupt=False)


def _ticks() -> Iterator[set[Any]]:
    while True:
        time.sleep(POLL_S)
        yield set()


def run_processes(count: int, app: str | None, watch: list[Path] | None = None,
                  queues: list[str] | None = None) -> int:
    return Supervisor(count, app, watch, queues).run()
