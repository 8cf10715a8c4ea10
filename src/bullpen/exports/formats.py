"""Row formats for exports (CSV, JSON Lines), encoded batch by batch in constant memory."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bullpen.errors import ExportError

Row = Mapping[str, Any]
# Spreadsheet apps run cells starting with these as formulas (CSV injection); such text
# cells get a leading apostrophe, which the apps show as plain text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_KINDS = frozenset({int, float, bool, type(None)})
_TEXT_KINDS = _PLAIN_KINDS | {str}


class RowEncoder(Protocol):
    """Turns batches of rows into bytes; keeps only the state needed between batches."""

    def encode(self, rows: Iterable[Row]) -> bytes: ...

    def finish(self) -> bytes:
        """Bytes still owed at the end (a CSV header when there were no rows)."""
        ...


class CsvEncoder:
    """CSV with a header; columns come from `columns` or the first row's keys."""

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        self._columns = list(columns) if columns else None
        self._buffer = io.StringIO()
        self._writer: Any = None

    def encode(self, rows: Iterable[Row]) -> bytes:
        iterator = iter(rows)
        if self._writer is None:
            first = next(iterator, None)
            if first is None:
                return b""
            self._start(first)
            iterator = itertools.chain((first,), iterator)
        batch = list(iterator)
        columns = self._columns or []
        if max(map(len, batch), default=0) > len(columns):
            for row in batch:
                _refuse_extra_keys(row, columns)
        # Column by column, so the common cells (numbers, text that is no formula, None, which
        # csv.writer writes empty) pass through C loops; only odd columns go cell by cell.
        all_dicts = set(map(type, batch)) <= {dict}
        cells = [_column(batch, key, all_dicts) for key in columns]
        self._writer.writerows(zip(*cells, strict=True) if columns else [()] * len(batch))
        return self._drain()

    def finish(self) -> bytes:
        if self._writer is None and self._columns:
            self._start({})
        return self._drain()

    def _drain(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()

    def _start(self, row: Row) -> None:
        if self._columns is None:
            self._columns = [str(key) for key in row]
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._writer.writerow(self._columns)


class JsonLinesEncoder:
    """One JSON object per line (UTF-8, no ASCII escaping)."""

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        self._columns = list(columns) if columns else None

    def encode(self, rows: Iterable[Row]) -> bytes:
        lines = []
        for row in rows:
            shown = {key: row.get(key) for key in self._columns} if self._columns else dict(row)
            lines.append(json.dumps(shown, ensure_ascii=False, default=str))
        return ("\n".join(lines) + "\n").encode() if lines else b""

    def finish(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Format:
    """A row format: its encoder, the Content-Type downloads get, and the file extension."""

    encoder: Callable[[Sequence[str] | None], RowEncoder]
    content_type: str
    extension: str


FORMATS: dict[str, Format] = {
    "csv": Format(CsvEncoder, "text/csv; charset=utf-8", "csv"),
    "jsonl": Format(JsonLinesEncoder, "application/x-ndjson", "jsonl"),
}


def check_format(name: str | None) -> str:
    if name not in FORMATS:
        raise ExportError(f"unknown export format {name!r}; use one of: {', '.join(FORMATS)}")
    return name


def encoder_for(name: str, columns: Sequence[str] | None = None) -> RowEncoder:
    return FORMATS[check_format(name)].encoder(columns)


def content_type_for(name: str) -> str:
    return FORMATS[check_format(name)].content_type


def extension_for(name: str) -> str:
    return FORMATS[check_format(name)].extension


def encode_rows(rows: Iterable[Row], name: str, batch_rows: int = 500,
                columns: Sequence[str] | None = None) -> Iterator[bytes]:
    """The rows as a stream of byte chunks, `batch_rows` rows at a time."""
    encoder = encoder_for(name, columns)
    batch: list[Row] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise ExportError(f"export rows must be mappings (dicts), got {type(row).__name__}: "
                              f"{row!r:.80}")
        batch.append(row)
        if len(batch) >= batch_rows:
            yield encoder.encode(batch)
            batch.clear()
    if batch:
        yield encoder.encode(batch)
    if tail := encoder.finish():
        yield tail


def _refuse_extra_keys(row: Row, columns: Sequence[str]) -> bool:
    extra = sorted(str(key) for key in row if key not in columns)
    if extra:
        raise ExportError(f"export row has keys that are not columns: {extra} "
                          f"(columns: {', '.join(columns)})")
    return True


def _column(batch: list[Row], key: str, all_dicts: bool) -> list[Any]:
    values: list[Any] = (list(map(dict.get, batch, itertools.repeat(key)))  # type: ignore[arg-type]
                         if all_dicts else [row.get(key) for row in batch])
    kinds = set(map(type, values))
    if kinds <= _PLAIN_KINDS:
        return values
    if kinds <= _TEXT_KINDS:
        texts: list[str] = (values if kinds == {str}
                            else [value for value in values if type(value) is str])
        if not any(map(str.startswith, texts, itertools.repeat(_FORMULA_STARTS))):
            return values
    return [_cell(value) for value in values]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_STARTS) else value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value
