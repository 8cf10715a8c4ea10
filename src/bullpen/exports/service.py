"""ExportService: create, read, list and delete exports, and issue and verify download tokens."""

from __future__ import annotations

import mimetypes
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO

from bullpen.errors import ExportError, ExportNotFoundError
from bullpen.exports import formats
from bullpen.exports.store import Export, ExportFields, ExportStore, ExportWriter
from bullpen.exports.tokens import TokenSigner, load_secrets
from bullpen.settings import Settings

_COPY_CHUNK_BYTES = 64 * 1024
_MAX_FILENAME_CHARS = 200
# type/subtype with optional parameters, printable ASCII only: it becomes a response header.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;[ -~]*)?")
Source = bytes | bytearray | memoryview | BinaryIO | Iterable[formats.Row]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A download token and the moment it stops working."""

    token: str
    expires_at: datetime

    def __str__(self) -> str:
        return self.token


class ExportService:
    """Everything an app or task does with exports; refuses to start without a usable secret."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._signer = TokenSigner(load_secrets(settings))
        self.store = ExportStore(settings.export_path, settings.export_max_file_age_hours)

    def create(self, filename: str, source: Source, *, format: str | None = None,
               content_type: str | None = None, label: str | None = None,
               owner: str | None = None) -> tuple[Export, str]:
        """Write `source` (bytes, a binary file, or rows with a format) as a new export.

        Returns the export and a download token valid EXPORT_DEFAULT_EXPIRY_MINUTES.
        """
        rows_format = _rows_format(filename, source, format)
        with self.open_writer(filename, format=rows_format or format, content_type=content_type,
                              label=label, owner=owner) as writer:
            for chunk in _chunks(source, rows_format):
                writer.write(chunk)
            export = writer.commit()
        return export, self.issue_token(export).token

    def open_writer(self, filename: str, *, format: str | None = None,
                    content_type: str | None = None, label: str | None = None,
                    owner: str | None = None) -> ExportWriter:
        """A writer for content produced piece by piece; call `commit()` to publish it."""
        shown = clean_filename(filename)
        if format is not None:
            formats.check_format(format)
        if content_type is not None and not is_media_type(content_type):
            raise ExportError(f"content_type {content_type!r} is not a media type; "
                              "pass one such as 'text/csv; charset=utf-8', or leave it out")
        kind = content_type or (formats.content_type_for(format) if format else None) \
            or mimetypes.guess_type(shown)[0] or "application/octet-stream"
        return self.store.writer(ExportFields(shown, kind, format, label, owner))

    def get(self, export_id: str) -> Export:
        return self.store.get(export_id)

    def list(self, *, owner: str | None = None, limit: int | None = None) -> list[Export]:
        """Exports, newest first (ids sort by creation time); optionally one owner's only."""
        found: list[Export] = []
        for export_id in sorted(self.store.iter_ids(), reverse=True):
            try:
                export = self.store.get(export_id)
            except ExportNotFoundError:
                continue  # deleted or half-deleted while listing
            if owner is None or export.owner == owner:
                found.append(export)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def open(self, export_id: str) -> BinaryIO:
        """The export's content for reading (the caller closes it)."""
        return self.store.open(export_id)

    def read(self, export_id: str) -> bytes:
        with self.open(export_id) as handle:
            return handle.read()

    def delete(self, export_id: str) -> bool:
        return self.store.delete(export_id)

    def issue_token(self, export: Export | str, *,
                    expires_in_minutes: float | None = None) -> IssuedToken:
        """A fresh download token; it never outlives the file (capped at its deletion time)."""
        target = export if isinstance(export, Export) else self.store.get(export)
        if expires_in_minutes is not None and not expires_in_minutes > 0:
            raise ExportError(f"expires_in_minutes={expires_in_minutes!r}: expected minutes > 0 "
                              "(leave it out for EXPORT_DEFAULT_EXPIRY_MINUTES)")
        minutes = expires_in_minutes or self._settings.export_default_expiry_minutes
        wanted = datetime.fromtimestamp(time.time(), tz=UTC) + timedelta(minutes=minutes)
        # Whole seconds, rounded down, so the capped expiry is never after the deletion.
        expires_at = min(wanted, target.expires_at).replace(microsecond=0)
        return IssuedToken(self._signer.sign(target.id, expires_at), expires_at)

    def verify(self, token: str) -> Export:
        """The export a token grants; TokenExpiredError, TokenInvalidError or
        ExportNotFoundError otherwise."""
        claims = self._signer.decode(token)
        return self.store.get(claims.export_id)


def is_media_type(value: str) -> bool:
    """Whether `value` is a well-formed Content-Type header value."""
    return isinstance(value, str) and _MEDIA_TYPE.fullmatch(value) is not None


def clean_filename(filename: str) -> str:
    """The name shown to the downloader: no directories, control characters or empty names."""
    if not isinstance(filename, str):
        raise ExportError(f"export filename must be a string, got {type(filename).__name__}")
    base = PureWindowsPath(PurePosixPath(filename).name).name
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    if not cleaned:
        raise ExportError(f"export filename {filename!r} is empty once directories and control "
                          "characters are removed; pass a plain name such as 'report.csv'")
    if len(cleaned) > _MAX_FILENAME_CHARS:
        stem, dot, suffix = cleaned.rpartition(".")
        keep = _MAX_FILENAME_CHARS - len(suffix) - 1
        cleaned = f"{stem[:keep]}.{suffix}" if dot and keep > 0 else cleaned[:_MAX_FILENAME_CHARS]
    return cleaned


def _rows_format(filename: str, source: Any, format: str | None) -> str | None:
    """The row format when `source` is rows (given, or from the file name); None for bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        return None
    if isinstance(source, str):
        raise ExportError("export source is a str; pass bytes (text.encode()), a binary file "
                          "or an iterable of row dicts with format='csv' or 'jsonl'")
    if format is None:
        format = PurePosixPath(filename).suffix.lstrip(".").lower() or None
        if format not in formats.FORMATS:
            raise ExportError(f"rows need a format for {filename!r}: pass format='csv' or "
                              "format='jsonl'")
    return formats.check_format(format)


def _chunks(source: Any, rows_format: str | None) -> Iterable[bytes]:
    if rows_format is not None:
        return formats.encode_rows(source, rows_format)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return [bytes(source)]
    return _file_chunks(source)


def _file_chunks(handle: BinaryIO) -> Iterable[bytes]:
    while chunk := handle.read(_COPY_CHUNK_BYTES):
        if not isinstance(chunk, (bytes, bytearray)):
            raise ExportError("export source file must be opened in binary mode ('rb')")
        yield bytes(chunk)
