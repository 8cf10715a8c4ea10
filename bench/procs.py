"""Starting the measured processes (`bullpen …`, `node bench/node/…`, the port's worker), each
with its output in a file and, when pinned, on the CPUs it is given."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"
# The interop tests' pinned install (npm bullmq 6.7.0 + ioredis); `make bench` runs `npm ci` there.
NODE_ENV = {"NODE_PATH": str(ROOT / "tests" / "node" / "node_modules")}
BULLPEN = str(Path(sys.executable).parent / "bullpen")


class Service:
    """A long-running process whose combined output goes to a temporary file."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None,
                 cpus: str | None = None) -> None:
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="bullpen-bench-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        pinned = ["taskset", "-c", cpus, *args] if cpus else args
        self.popen = subprocess.Popen(
            pinned, env={**os.environ, **(env or {})}, cwd=ROOT, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"{text!r} not seen from {self.popen.args!r}:\n{self.output()[-3000:]}")

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, then SIGKILL to the group if it has not exited within `timeout_s`."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            code = self.popen.wait(5)
        self._log.close()
        self.log_path.unlink(missing_ok=True)
        return code


def bullpen_env(url: str, queue: str, workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for a `bullpen` command on the benchmark server, with no rate limiter."""
    return {
        "WORKER_REDIS_URL": url,
        "WORKER_DEFAULT_QUEUE": queue,
        # The default limiter (10 jobs/s) would be the whole measurement; Node has none.
        "WORKER_LIMITER_MAX": "0",
        # Node's benchmark worker keeps no per-minute metrics; like for like.
        "WORKER_METRICS_MAX_DATA_POINTS": "0",
        "BULLPEN_VAR_DIR": str(workdir / "var"),
        "EXPORT_DIR": str(workdir / "exports"),
        "EXPORT_TOKEN_SECRET": "bench-secret-Vb8Qx2mLr7Tz4Kc9Wn3Jp6Hd5Fg1Sy0Ae",
        **extra,
    }


def bullpen_worker(url: str, queue: str, workdir: Path, concurrency: int,
                   processes: int | None = None, cpus: str | None = None,
                   **extra: str) -> Service:
    args = [BULLPEN, "worker", "--app", "bench.app"]
    if processes:
        args += ["--processes", str(processes)]
    env = bullpen_env(url, queue, workdir, WORKER_CONCURRENCY=str(concurrency), **extra)
    service = Service(args, env, cpus)
    if env.get("LOG_LEVEL", "INFO") in ("INFO", "DEBUG"):  # quieter runs are timed from job one
        _ready_or_stop(service, "Worker started and ready")
    return service


def _ready_or_stop(service: Service, text: str) -> None:
    try:
        service.wait_for(text)
    except BaseException:
        service.stop(5)
        raise


def node_worker(url: str, queue: str, concurrency: int, mode: str = "noop",
                cpus: str | None = None) -> Service:
    service = Service(["node", str(NODE_DIR / "worker.cjs"), url, queue, str(concurrency), mode],
                      NODE_ENV, cpus)
    _ready_or_stop(service, "ready")
    return service


def port_worker(url: str, queue: str, concurrency: int, cpus: str | None = None) -> Service:
    """The port's own Worker, tuned (bench/port_worker.py)."""
    service = Service([sys.executable, "-m", "bench.port_worker", url, queue, str(concurrency)],
                      cpus=cpus)
    _ready_or_stop(service, "ready")
    return service


def node_run(script: str, *args: str, timeout_s: float = 300) -> str:
    """Run a one-shot Node script and return its stdout."""
    done = subprocess.run(["node", str(NODE_DIR / script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout_s, check=True,
                          env={**os.environ, **NODE_ENV})
    return done.stdout
