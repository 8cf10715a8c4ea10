"""Process measurement: CPU seconds and peak RSS of a process tree, sampled while it runs."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Sequence

import psutil


class TreeSampler:
    """Samples a process and its children every `interval_s` (RSS summed over the tree)."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self._root = psutil.Process(pid)
        self._interval_s = interval_s
        self._known: dict[int, psutil.Process] = {pid: self._root}
        self._cpu_s: dict[int, float] = {}
        self.peak_rss_bytes = 0
        self.peak_rss_per_process_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def cpu_s(self) -> float:
        """CPU (user + system) of every process seen so far, at its last sample."""
        self.sample()
        return sum(self._cpu_s.values())

    def sample(self) -> None:
        try:
            for child in self._root.children(recursive=True):
                self._known.setdefault(child.pid, child)
        except psutil.Error:
            pass
        total_rss = 0
        for pid, proc in list(self._known.items()):
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
            except psutil.Error:
                continue
            self._cpu_s[pid] = times.user + times.system
            total_rss += rss
            self.peak_rss_per_process_bytes = max(self.peak_rss_per_process_bytes, rss)
        self.peak_rss_bytes = max(self.peak_rss_bytes, total_rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval_s)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return float(ordered[rank])
