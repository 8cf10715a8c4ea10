"""The export directory's identity: a marker file holding a random id, written once, so that
processes on different hosts can tell whether they see the same directory.

A worker publishes the id with its heartbeat; `bullpen doctor` and `/readyz` compare it with
their own. Two paths that are one mount (NFS, a shared volume) give one id; two local
directories give two, however alike their paths. Cleanup never removes the marker.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bullpen.runtime.heartbeat import WorkerInfo

MARKER = ".bullpen-export-dir"
DOCS = "docs/deployment.md#one-export-directory-for-every-host"
_ID = re.compile(r"[0-9a-f]{32}")
_MARKER_MODE = 0o600


def read_identity(directory: Path) -> str | None:
    """The id in `directory`'s marker; None when there is none (or it is not bullpen's)."""
    try:
        with open(directory / MARKER, encoding="ascii", errors="replace") as file:
            text = file.read(200).strip()
    except OSError:
        return None
    return text if _ID.fullmatch(text) else None


def ensure_identity(directory: Path) -> str | None:
    """The directory's id, writing the marker first if it has none; None when the directory
    does not exist (yet) or cannot be written.

    The marker is written whole under a temporary name and linked into place, so processes
    starting together on one shared directory agree on the first one's id.
    """
    found = read_identity(directory)
    if found is not None or not directory.is_dir():
        return found
    temporary = directory / f".{MARKER}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _MARKER_MODE)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(16) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, directory / MARKER)
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return read_identity(directory)


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """A live worker whose export directory is not this process's."""

    host: str
    pid: int
    export_dir: str

    def named(self) -> str:
        return f"{self.host}/{self.pid}"


def workers_elsewhere(own_id: str | None, workers: list[WorkerInfo]) -> list[Elsewhere]:
    """The workers whose published export directory id differs from `own_id`, once each.

    A worker that publishes no id (an older bullpen, or a directory not created yet) is
    never counted: no alarm without evidence."""
    found: dict[tuple[str, int], Elsewhere] = {}
    for info in workers:
        if info.export_dir_id is not None and info.export_dir_id != own_id:
            found[(info.host, info.pid)] = Elsewhere(info.host, info.pid, info.export_dir)
    return sorted(found.values(), key=lambda worker: (worker.host, worker.pid))


def mismatch_summary(own_id: str | None, elsewhere: list[Elsewhere], who: str) -> str:
    """One sentence: which workers, and why downloads from here fail for their exports."""
    names = ", ".join(worker.named() for worker in elsewhere[:5])
    more = f" and {len(elsewhere) - 5} more" if len(elsewhere) > 5 else ""
    own = "has no export directory marker" if own_id is None else "sees another directory"
    return (f"{len(elsewhere)} worker(s) write exports to a directory this {who} does not see "
            f"(worker {names}{more}; this {who} {own}): links to their exports answer 404 here")


FIX = ("mount one shared directory (NFS, a named volume) at EXPORT_DIR for every worker and "
       f"web, then restart them ({DOCS})")
