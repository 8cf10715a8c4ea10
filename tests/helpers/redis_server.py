"""A private redis-server for one test or benchmark: its own port and data dir, restartable.

Tests use it when a Redis must be stopped, restarted or configured differently from the shared
one; benchmarks use it so nothing else touches the server they measure.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    """redis-server from PATH (what CI has), else valkey-server."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("neither redis-server nor valkey-server is on PATH")


class PrivateRedis:
    """redis-server on a free loopback port, AOF on (fsync always) unless `persistent=False`."""

    def __init__(self, data_dir: Path, port: int | None = None, options: tuple[str, ...] = (),
                 persistent: bool = True, password: str | None = None) -> None:
        # Extra redis-server arguments; later ones override earlier.
        self.options = (*options, *(("--requirepass", password) if password else ()))
        self.password = password
        self.port = port or free_port()
        self.data_dir = data_dir
        self.persistent = persistent
        data_dir.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10) -> PrivateRedis:
        persistence = (("--appendonly", "yes", "--appendfsync", "always") if self.persistent
                       else ("--appendonly", "no"))
        self.process = subprocess.Popen(
            [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence, "--dir", str(self.data_dir), "--maxmemory-policy", "noeviction",
             "--loglevel", "warning", *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        connection = redis.Redis(port=self.port, socket_timeout=0.5, password=self.password)
        try:
            return bool(connection.ping())
        except redis.RedisError:
            return False
        finally:
            connection.close()

    @functools.cached_property
    def client(self) -> redis.Redis:
        """A synchronous client with decoded replies, for the harness."""
        return redis.Redis(port=self.port, decode_responses=True, password=self.password)

    def stop(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def reset(self) -> None:
        """Empty the data set and the command statistics."""
        self.client.flushall()
        self.client.config_resetstat()

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the last CONFIG RESETSTAT (INFO commandstats)."""
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in stats.items()}


@contextlib.contextmanager
def private_redis(persistent: bool = False, password: str | None = None
                  ) -> Iterator[PrivateRedis]:
    """A started server in a temporary directory, stopped and removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="bullpen-redis-"))
    server = PrivateRedis(workdir, persistent=persistent, password=password).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
