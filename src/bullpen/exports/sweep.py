"""The safe directory walk behind export cleanup (synchronous; run it in a thread).

Like tmpreaper and GNU find: one directory opened by file descriptor, entries examined with
lstat relative to it, symlinks never followed, other filesystems never entered, and only
regular files with bullpen's own names ever removed. Memory stays bounded: scandir streams
the entries, the report keeps counts plus a bounded number of examples, and the pairs met far
apart are remembered up to MAX_REMEMBERED ids.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bullpen.errors import ExportDirectoryError
from bullpen.exports import naming
from bullpen.exports.naming import Kind, ParsedName
from bullpen.exports.store import check_directory
from bullpen.logs import printable

FOREIGN = "foreign file (not named by bullpen)"
SYMLINK = "symlink (never followed)"
DIRECTORY = "directory (not descended into)"
NOT_REGULAR = "not a regular file"
OTHER_FILESYSTEM = "on another filesystem"
IN_PROGRESS = "temporary file of a write in progress"
MOUNT_POINT = "mount point (never removed)"
OTHER_OWNER = "owned by another user"
MAX_EXAMPLES = 20
MAX_LISTED = 1000
# Pairs whose two files the walk meets far apart are remembered by id (about 100 bytes each);
# past this many, an entry costs one more stat instead, and memory stays bounded.
MAX_REMEMBERED = 100_000

ProgressCallback = Callable[[int], None]
ExpiredCallback = Callable[[str, int], None]


@dataclass(slots=True)
class CleanupReport:
    """What one cleanup run found and did; `deleted` counts exports (file plus metadata)."""

    dry_run: bool = False
    scanned: int = 0
    deleted: int = 0
    deleted_temp: int = 0
    deleted_orphans: int = 0
    bytes_freed: int = 0
    kept: int = 0
    vanished: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: list[dict[str, str]] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    error_count: int = 0
    stopped_early: bool = False
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    """Exports created before `cutoff_s` expire; temp files untouched since `temp_cutoff_s`."""

    cutoff_s: float
    temp_cutoff_s: float
    dry_run: bool = False


def shown(name: str) -> str:
    """A file name safe to print or put in JSON: invalid UTF-8 and control characters escaped."""
    return printable(os.fsencode(name).decode("utf-8", "backslashreplace"))


def service_uid(directory_uid: int) -> int:
    """Whose files cleanup may delete: this process's user, or, when it runs as root, the
    owner of the export directory (the service's user), never anyone else's files."""
    uid = os.geteuid()
    return directory_uid if uid == 0 else uid


class _Sweeper:
    """One walk's decisions. System calls are spent only on what may be removed: a fresh
    export is judged by its name alone, and an expired pair costs what `find -delete` pays
    (a stat and an unlink per file), in whichever order the directory lists the two files."""

    def __init__(self, dir_fd: int, opened: os.stat_result, policy: SweepPolicy,
                 report: CleanupReport, on_expired: ExpiredCallback | None) -> None:
        self.fd = dir_fd
        self.device = opened.st_dev
        self.owner = service_uid(opened.st_uid)
        self.policy = policy
        self.report = report
        self.on_expired = on_expired
        # Expired metadata seen before its data file, by export id with its size (removed with
        # the data file, or as an orphan at the end), and metadata removed with its data before
        # its own entry came up. Ids and sizes only: a stat result would be five times larger.
        self.waiting_meta: dict[str, int] = {}
        self.removed_meta: set[str] = set()

    def visit(self, entry: os.DirEntry[str]) -> None:
        name = entry.name
        parsed = naming.parse(name)
        reason = _type_refusal(entry)
        if reason is None and parsed is None:
            reason = FOREIGN
        if reason is not None:
            self._skip(name, reason)
        elif parsed is not None and parsed.kind is Kind.TEMP:
            self._visit_temp(name)
        elif parsed is not None and parsed.created_ms / 1000 >= self.policy.cutoff_s:
            self.report.kept += parsed.kind is Kind.DATA
        elif parsed is not None and parsed.kind is Kind.DATA:
            self._visit_data(name, parsed)
        elif parsed is not None:
            self._visit_meta(name, parsed)

    def finish(self) -> None:
        """Metadata whose data file never came up: an orphan (crash between the two removals),
        unless the data file appeared meanwhile."""
        if self.report.stopped_early:
            return
        for export_id, size in self.waiting_meta.items():
            self._remove_orphan(export_id, size)
        self.waiting_meta.clear()

    def _refusal(self, info: os.stat_result) -> str | None:
        """Why a bullpen-named entry, examined just before removal, must be left alone."""
        reason = _mode_refusal(info.st_mode)
        if reason is not None:
            return reason
        if info.st_dev != self.device:
            return OTHER_FILESYSTEM
        return OTHER_OWNER if info.st_uid != self.owner else None

    def _examined(self, name: str, *, count_vanished: bool) -> os.stat_result | None:
        """The entry's lstat if it may be removed; a skip is recorded otherwise."""
        info = self._lstat(name, count_vanished=count_vanished)
        if info is None:
            return None
        reason = self._refusal(info)
        if reason is not None:
            self._skip(name, reason)
            return None
        return info

    def _visit_data(self, name: str, parsed: ParsedName) -> None:
        info = self._examined(name, count_vanished=True)
        if info is None or not self._remove(name, info.st_size):
            return
        self.report.deleted += 1
        if len(self.report.expired) < MAX_LISTED:
            self.report.expired.append(parsed.export_id)
        if self.on_expired is not None:
            self.on_expired(shown(name), info.st_size)
        # The file goes first, then its metadata: a crash in between leaves an orphan that
        # the next run removes, never metadata pointing at a half-deleted file.
        meta = naming.meta_name(parsed.export_id)
        waiting = self.waiting_meta.pop(parsed.export_id, None)
        if waiting is not None:
            self._remove(meta, waiting)
            return
        meta_info = self._examined(meta, count_vanished=False)
        if meta_info is not None and self._remove(meta, meta_info.st_size) \
                and len(self.removed_meta) < MAX_REMEMBERED:
            self.removed_meta.add(parsed.export_id)

    def _visit_meta(self, name: str, parsed: ParsedName) -> None:
        if parsed.export_id in self.removed_meta:
            self.removed_meta.discard(parsed.export_id)
            return  # removed with its data file a moment ago
        info = self._examined(name, count_vanished=False)
        if info is None:
            return
        if len(self.waiting_meta) < MAX_REMEMBERED:
            self.waiting_meta[parsed.export_id] = info.st_size
        else:
            self._remove_orphan(parsed.export_id, info.st_size)

    def _remove_orphan(self, export_id: str, size: int) -> None:
        data = self._lstat(naming.data_name(export_id), count_vanished=False)
        if data is not None and stat.S_ISREG(data.st_mode):
            return  # its data file is there: both go when that entry comes up (or next run)
        if self._remove(naming.meta_name(export_id), size):
            self.report.deleted_orphans += 1

    def _visit_temp(self, name: str) -> None:
        info = self._examined(name, count_vanished=True)
        if info is None:
            return
        if info.st_mtime >= self.policy.temp_cutoff_s:
            self._skip(name, IN_PROGRESS)
        elif self._remove(name, info.st_size):
            self.report.deleted_temp += 1

    def _remove(self, name: str, size: int) -> bool:
        """Unlink `name`, examined a moment ago; True when (or, dry, as if) removed.

        No second lstat just before the unlink: it would narrow no window (the entry can change
        between any check and the unlink), and unlinkat removes a directory entry, never a
        symlink's target, so at worst it removes a link or fails on a directory.
        """
        if not self.policy.dry_run:
            try:
                os.unlink(name, dir_fd=self.fd)
            except FileNotFoundError:
                self.report.vanished += 1
                return False
            except OSError as exc:
                if exc.errno == errno.EBUSY:  # a bind mount on the entry: not ours to remove
                    self._skip(name, MOUNT_POINT)
                else:
                    self._error(name, exc)
                return False
        self.report.bytes_freed += size
        return True

    def _lstat(self, name: str, *, count_vanished: bool) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            # Deleted by someone else mid-run: not an error. Metadata files are not counted,
            # since this run removes them together with their data file.
            if count_vanished:
                self.report.vanished += 1
        except OSError as exc:
            self._error(name, exc)
        return None

    def _skip(self, name: str, reason: str) -> None:
        self.report.skipped[reason] = self.report.skipped.get(reason, 0) + 1
        if len(self.report.skipped_examples) < MAX_EXAMPLES:
            self.report.skipped_examples.append({"name": shown(name), "reason": reason})

    def _error(self, name: str, exc: OSError) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < MAX_EXAMPLES * 5:
            message = exc.strerror or type(exc).__name__
            self.report.errors.append({"name": shown(name), "error": message})


def _mode_refusal(mode: int) -> str | None:
    if stat.S_ISLNK(mode):
        return SYMLINK
    if stat.S_ISDIR(mode):
        return DIRECTORY
    return None if stat.S_ISREG(mode) else NOT_REGULAR


def _type_refusal(entry: os.DirEntry[str]) -> str | None:
    """The entry's type from the directory listing (no system call where the filesystem
    reports types); what is removed is examined again with lstat first."""
    try:
        if entry.is_symlink():
            return SYMLINK
        if entry.is_dir(follow_symlinks=False):
            return DIRECTORY
        return None if entry.is_file(follow_symlinks=False) else NOT_REGULAR
    except OSError:
        return None  # gone, or unreadable: the lstat before any removal says which


def _open_directory(directory: Path) -> tuple[int, os.stat_result]:
    """A descriptor on the export directory itself (never through a symlink), and its stat."""
    expected = check_directory(directory)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ExportDirectoryError(f"cannot open export directory {str(directory)!r}: "
                                   f"{exc.strerror}; check it exists and is a real directory"
                                   ) from None
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (expected.st_dev, expected.st_ino):
        os.close(fd)
        raise ExportDirectoryError(f"export directory {str(directory)!r} was replaced while "
                                   "cleanup opened it; run cleanup again")
    return fd, opened


def sweep(directory: Path, policy: SweepPolicy, *, on_progress: ProgressCallback | None = None,
          on_expired: ExpiredCallback | None = None, stop: threading.Event | None = None,
          progress_every: int = 500) -> CleanupReport:
    """Walk `directory` once and remove (or, in a dry run, list) what has expired."""
    report = CleanupReport(dry_run=policy.dry_run)
    fd, opened = _open_directory(directory)
    try:
        sweeper = _Sweeper(fd, opened, policy, report, on_expired)
        with os.scandir(fd) as entries:
            for entry in entries:
                if stop is not None and stop.is_set():
                    report.stopped_early = True
                    break
                report.scanned += 1
                sweeper.visit(entry)
                if on_progress is not None and report.scanned % progress_every == 0:
                    on_progress(report.scanned)
            sweeper.finish()
    finally:
        os.close(fd)
    if on_progress is not None:
        on_progress(report.scanned)
    return report
