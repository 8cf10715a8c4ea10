"""The export directory on disk: atomic writes, metadata beside each file, reads and deletes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from bullpen.errors import ExportDirectoryError, ExportError, ExportNotFoundError
from bullpen.exports import naming
from bullpen.exports.naming import Kind

_META_VERSION = 1
_FILE_MODE = 0o600
_DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class Export:
    """One export file and its metadata; `expires_at` is when cleanup will delete it."""

    id: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime
    expires_at: datetime
    format: str | None
    label: str | None
    owner: str | None
    path: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields for APIs and job results (the server path stays private)."""
        return {
            "id": self.id, "filename": self.filename, "content_type": self.content_type,
            "size_bytes": self.size_bytes, "sha256": self.sha256,
            "created_at": self.created_at.isoformat(), "expires_at": self.expires_at.isoformat(),
            "format": self.format, "label": self.label, "owner": self.owner,
        }


@dataclass(frozen=True, slots=True)
class ExportFields:
    """What the caller says about a new export; the store adds id, size, hash and times."""

    filename: str
    content_type: str
    format: str | None = None
    label: str | None = None
    owner: str | None = None


def check_directory(path: Path) -> os.stat_result:
    """The export directory's stat; ExportDirectoryError if missing, a symlink or not a dir."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise ExportDirectoryError(
            f"export directory {str(path)!r} does not exist; create it (mode 0700) or fix "
            "EXPORT_DIR / BULLPEN_VAR_DIR") from None
    if stat.S_ISLNK(info.st_mode):
        raise ExportDirectoryError(
            f"export directory {str(path)!r} is a symlink (to {os.readlink(path)!r}); "
            "bullpen refuses to manage files through it: point EXPORT_DIR at the real directory")
    if not stat.S_ISDIR(info.st_mode):
        raise ExportDirectoryError(f"export directory {str(path)!r} is not a directory; "
                                   "fix EXPORT_DIR")
    return info


class ExportStore:
    """Files in one export directory; the metadata file's rename is each export's commit."""

    def __init__(self, directory: Path, max_file_age_hours: float) -> None:
        self.directory = directory
        self._max_age = timedelta(hours=max_file_age_hours)

    def ensure_directory(self) -> None:
        self.directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        check_directory(self.directory)

    def writer(self, fields: ExportFields) -> ExportWriter:
        self.ensure_directory()
        return ExportWriter(self, naming.new_export_id(), fields)

    def get(self, export_id: str) -> Export:
        """The export, or ExportNotFoundError if either of its files is missing or damaged."""
        if not naming.is_export_id(export_id):
            raise ExportNotFoundError(export_id, " (not a bullpen export id)")
        try:
            with self._open(naming.meta_name(export_id)) as handle:
                meta = json.load(handle)
            data_info = os.lstat(self.directory / naming.data_name(export_id))
        except (FileNotFoundError, NotADirectoryError):
            raise ExportNotFoundError(export_id) from None
        except (OSError, ValueError) as exc:
            raise ExportNotFoundError(export_id, f" (unreadable: {exc})") from None
        if not stat.S_ISREG(data_info.st_mode) or data_info.st_size != meta.get("size_bytes"):
            raise ExportNotFoundError(export_id, " (its data file is damaged or replaced)")
        return self._export(meta)

    def open(self, export_id: str) -> BinaryIO:
        self.get(export_id)
        return self._open(naming.data_name(export_id))

    def delete(self, export_id: str) -> bool:
        """Remove the data file, then its metadata; False if neither existed."""
        if not naming.is_export_id(export_id):
            return False
        removed = False
        for name in (naming.data_name(export_id), naming.meta_name(export_id)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / name)
                removed = True
        return removed

    def iter_ids(self) -> Iterator[str]:
        """Ids of committed exports, in directory order (streaming)."""
        if not self.directory.is_dir():
            return
        with os.scandir(self.directory) as entries:
            for entry in entries:
                parsed = naming.parse(entry.name)
                if parsed is not None and parsed.kind is Kind.META:
                    yield parsed.export_id

    def _open(self, name: str) -> BinaryIO:
        # O_NOFOLLOW: a symlink planted under a bullpen name is never read through.
        fd = os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")

    def _export(self, meta: dict[str, Any]) -> Export:
        export_id = str(meta["id"])
        created = naming.created_at(export_id)
        return Export(
            id=export_id, filename=str(meta["filename"]),
            content_type=str(meta["content_type"]), size_bytes=int(meta["size_bytes"]),
            sha256=str(meta["sha256"]), created_at=created, expires_at=created + self._max_age,
            format=meta.get("format"), label=meta.get("label"), owner=meta.get("owner"),
            path=self.directory / naming.data_name(export_id),
        )


class ExportWriter:
    """Writes one export under temporary names; `commit` makes it appear whole, or not at all."""

    def __init__(self, store: ExportStore, export_id: str, fields: ExportFields) -> None:
        self._store = store
        self.export_id = export_id
        self._fields = fields
        self._temp = store.directory / naming.temp_name(export_id, Kind.DATA)
        fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                     _FILE_MODE)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size_bytes = 0

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise ExportError(f"export {self.export_id} is already committed or aborted")
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size_bytes += len(chunk)

    def commit(self) -> Export:
        """fsync the content, write the metadata, rename both into place, fsync the directory."""
        if self._file is None:
            raise ExportError(f"export {self.export_id} is already committed or aborted")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        meta = self._meta()
        directory = self._store.directory
        meta_temp = directory / naming.temp_name(self.export_id, Kind.META)
        try:
            _write_synced(meta_temp, json.dumps(meta, ensure_ascii=False).encode())
            os.rename(self._temp, directory / naming.data_name(self.export_id))
            os.rename(meta_temp, directory / naming.meta_name(self.export_id))
        except BaseException:
            self._discard(meta_temp, directory / naming.data_name(self.export_id))
            raise
        _fsync_directory(directory)
        return self._store.get(self.export_id)

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._discard()

    def _discard(self, *extra: Path) -> None:
        for path in (self._temp, *extra):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _meta(self) -> dict[str, Any]:
        fields = self._fields
        return {
            "v": _META_VERSION, "id": self.export_id, "filename": fields.filename,
            "content_type": fields.content_type, "format": fields.format,
            "size_bytes": self.size_bytes, "sha256": self._hash.hexdigest(),
            "created_at": naming.created_at(self.export_id).isoformat(),
            "label": fields.label, "owner": fields.owner,
        }

    def __enter__(self) -> ExportWriter:
        return self

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.abort()  # a no-op after commit; otherwise nothing half-written stays behind


def _write_synced(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, _FILE_MODE)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    # Makes the renames durable: after a crash the export is either fully there or absent.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
