"""Where the embedded server keeps its files, and the private directory its socket lives in."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bullpen.errors import EmbeddedError
from bullpen.redis_address import RedisUrlError, parse

# sun_path is 108 bytes on Linux (104 on macOS). A longer path puts the socket in a private
# directory under the runtime or temp directory instead: the server never listens on TCP,
# where any local user could reach it.
MAX_SOCKET_PATH_BYTES = 100
PRIVATE_MODE = 0o700


@dataclass(frozen=True, slots=True)
class ServerFiles:
    """Where the embedded server keeps everything, all under `<var dir>/redis`."""

    root: Path

    @classmethod
    def under(cls, var_dir: Path) -> ServerFiles:
        return cls(var_dir.expanduser().absolute() / "redis")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket(self) -> Path:
        """`redis.sock` beside the data when that path is short enough, else in a private
        directory of this user's named after this root (so each var dir has its own)."""
        beside = self.root / "redis.sock"
        if len(os.fsencode(beside)) <= MAX_SOCKET_PATH_BYTES:
            return beside
        digest = hashlib.sha256(os.fsencode(self.root)).hexdigest()[:16]
        return _short_base() / f"bullpen-{os.geteuid()}" / digest / "redis.sock"

    @property
    def config(self) -> Path:
        return self.root / "redis.conf"

    @property
    def pidfile(self) -> Path:
        return self.root / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.root / "redis.log"

    @property
    def lock(self) -> Path:
        return self.root / "start.lock"

    @property
    def url_file(self) -> Path:
        """The URL of the last start (its unix socket)."""
        return self.root / "url"


def _short_base() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and len(os.fsencode(runtime)) <= MAX_SOCKET_PATH_BYTES // 2 and \
            _is_private(Path(runtime)):
        return Path(runtime)
    temp = tempfile.gettempdir()
    return Path(temp if len(os.fsencode(temp)) <= MAX_SOCKET_PATH_BYTES // 2 else "/tmp")


def _is_private(path: Path) -> bool:
    """A real directory (not a symlink) owned by this user that nobody else may enter."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
            and info.st_mode & 0o077 == 0)


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) mode 0700, or check an existing one is private.

    A directory this user owns is tightened to 0700; one owned by someone else, or a symlink,
    is refused: whoever controls it could swap the socket for their own server.
    """
    try:
        path.mkdir(mode=PRIVATE_MODE, parents=True, exist_ok=True)
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() \
                and info.st_mode & 0o077:
            os.chmod(path, PRIVATE_MODE)
    except OSError as exc:
        raise EmbeddedError(f"Cannot create the embedded server's directory {path}: "
                            f"{exc.strerror}. Fix: set BULLPEN_VAR_DIR to a writable "
                            "directory, or set WORKER_REDIS_URL.") from None
    if not _is_private(path):
        raise EmbeddedError(
            f"{path} is not a private directory of this user (uid {os.geteuid()}): it is a "
            "symlink or belongs to someone else, who could put their own server there. "
            f"Fix: remove {path}, or set BULLPEN_VAR_DIR to a directory only you can enter.")


def trusted_socket(url: str) -> bool:
    """Whether `url` is a unix socket this user's server made, in a directory only this user
    can enter: checked before anything is sent to a recorded address."""
    try:
        path = parse(url).path
    except RedisUrlError:
        return False
    if path is None:
        return False  # a TCP address (recorded by an older version) is never trusted
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISSOCK(info.st_mode) and info.st_uid == os.geteuid()
            and _is_private(Path(path).parent))
