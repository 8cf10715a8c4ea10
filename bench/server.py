"""A private, throwaway redis-server for benchmarks, on its own port (never the shared 6379)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis


def free_port() -> int:
    """A loopback port nothing listens on now (never the shared 6379)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class PrivateRedis:
    """A running private server: its URL and a synchronous client for the harness."""

    port: int
    client: redis.Redis

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def reset(self) -> None:
        """Empty the data set and the command statistics."""
        self.client.flushall()
        self.client.config_resetstat()

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the last CONFIG RESETSTAT (INFO commandstats)."""
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in stats.items()}


@contextmanager
def private_redis(port: int | None = None) -> Iterator[PrivateRedis]:
    """Start redis-server without persistence on `port` (a free one by default); stop it after."""
    port = port or free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH")
    workdir = tempfile.mkdtemp(prefix="bullpen-bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--maxmemory-policy", "noeviction", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield PrivateRedis(port, client)
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
