"""Stop requests: one request however many copies of its signal arrive, and following a parent."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections.abc import Callable

# A terminal's Ctrl-C, `kill -TERM -<pgid>` and systemd's control-group stop reach a process
# from several senders (the terminal or service manager, and its supervising parent) within
# milliseconds; signals this close together are one request. A person who repeats a request
# does so later, and that second request stops the process at once.
SAME_REQUEST_WINDOW_S = 1.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PARENT_ENV = "BULLPEN_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


class StopRequests:
    """Counts stop requests: `register` answers 1 for the first, 2 for a later one, 0 for a copy."""

    def __init__(self, window_s: float = SAME_REQUEST_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._first_at: float | None = None

    @property
    def requested(self) -> bool:
        return self._first_at is not None

    def register(self) -> int:
        now = self._clock()
        if self._first_at is None:
            self._first_at = now
            return 1
        return 2 if now - self._first_at > self.window_s else 0


def die_with_parent(signum: int) -> None:
    """Linux: have the kernel send `signum` to this process when its parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)


def follow_parent() -> None:
    """In a supervised child: get SIGTERM (and drain) when the supervisor dies, even by SIGKILL.

    The children run in their own process group, so nothing else would stop them.
    """
    expected = os.environ.pop(PARENT_ENV, "")
    if not expected.isdigit():
        return
    die_with_parent(signal.SIGTERM)
    if os.getppid() != int(expected):  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
