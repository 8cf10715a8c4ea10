"""ExportService and the store: sources, formats, atomic writes, metadata, listing, deletion."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from bullpen.errors import ExportDirectoryError, ExportError, ExportNotFoundError
from bullpen.exports import naming
from bullpen.exports.service import ExportService, clean_filename
from bullpen.settings import Settings


@pytest.fixture
def service(settings: Settings) -> ExportService:
    return ExportService(settings)


def _names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_bytes_export_round_trip(service: ExportService, settings: Settings) -> None:
    export, token = service.create("notes.txt", b"hello", label="demo", owner="user-7")
    assert service.read(export.id) == b"hello"
    assert export.size_bytes == 5
    assert export.content_type == "text/plain"
    assert (export.label, export.owner) == ("demo", "user-7")
    assert export.expires_at - export.created_at == timedelta(hours=24)
    assert service.verify(token) == export
    assert _names(settings.export_path) == [naming.data_name(export.id),
                                            naming.meta_name(export.id)]


def test_directory_and_files_are_private(service: ExportService, settings: Settings) -> None:
    export, _ = service.create("a.bin", b"\x00\x01")
    assert settings.export_path.stat().st_mode & 0o777 == 0o700
    assert export.path.stat().st_mode & 0o777 == 0o600


def test_binary_file_source_is_copied_in_chunks(service: ExportService) -> None:
    content = os.urandom(300_000)
    export, _ = service.create("blob.bin", io.BytesIO(content))
    with service.open(export.id) as handle:
        assert handle.read() == content


def test_text_file_source_is_refused(service: ExportService, settings: Settings) -> None:
    with pytest.raises(ExportError, match="binary mode"):
        service.create("t.txt", io.StringIO("text"))  # type: ignore[arg-type]
    assert _names(settings.export_path) == []


def test_csv_rows(service: ExportService) -> None:
    rows: list[dict[str, Any]] = [{"name": "a", "n": 1, "formula": "=HYPERLINK(1)"},
                                  {"name": "b", "n": None}]
    export, _ = service.create("r.csv", rows)
    assert service.read(export.id) == b"name,n,formula\r\na,1,'=HYPERLINK(1)\r\nb,,\r\n"
    assert export.content_type == "text/csv; charset=utf-8"
    assert export.format == "csv"


def test_jsonl_rows(service: ExportService) -> None:
    rows: list[dict[str, Any]] = [{"a": 1}, {"a": "é"}]
    export, _ = service.create("r.data", iter(rows), format="jsonl")
    lines = service.read(export.id).decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"a": 1}, {"a": "é"}]
    assert export.content_type == "application/x-ndjson"


def test_rows_need_a_format(service: ExportService) -> None:
    with pytest.raises(ExportError, match="format='csv'"):
        service.create("rows.bin", [{"a": 1}])
    with pytest.raises(ExportError, match="unknown export format 'xml'"):
        service.create("rows.xml", [{"a": 1}], format="xml")
    with pytest.raises(ExportError, match="is a str"):
        service.create("rows.csv", "a,b")  # type: ignore[arg-type]


def test_bad_row_leaves_nothing_behind(service: ExportService, settings: Settings) -> None:
    with pytest.raises(ExportError, match="mappings"):
        service.create("r.csv", [{"a": 1}, ["not", "a", "dict"]])  # type: ignore[list-item]
    assert _names(settings.export_path) == []


def test_rows_stream_in_constant_memory(service: ExportService) -> None:
    def rows(count: int) -> Iterator[dict[str, object]]:
        for index in range(count):
            yield {"index": index, "text": "x" * 100}

    tracemalloc.start()
    try:
        export, _ = service.create("big.csv", rows(100_000))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert export.size_bytes > 10_000_000
    assert peak_bytes < 2_000_000


def test_write_is_atomic(service: ExportService, settings: Settings) -> None:
    with service.open_writer("partial.txt") as writer:
        writer.write(b"half of it")
        names = _names(settings.export_path)
        assert len(names) == 1
        assert naming.parse(names[0]) is not None
        assert names[0].startswith(".bp-") and names[0].endswith(".tmp")
        with pytest.raises(ExportNotFoundError):
            service.get(writer.export_id)
        export = writer.commit()
    assert _names(settings.export_path) == [naming.data_name(export.id),
                                            naming.meta_name(export.id)]


def test_abandoned_writer_removes_its_temp_file(service: ExportService,
                                                settings: Settings) -> None:
    def fail_midway() -> None:
        with service.open_writer("x.txt") as writer:
            writer.write(b"data")
            raise RuntimeError("producer crashed")

    with pytest.raises(RuntimeError):
        fail_midway()
    assert _names(settings.export_path) == []


def test_list_newest_first_and_by_owner(service: ExportService) -> None:
    # A millisecond apart: ids order by creation time to the millisecond, and three exports
    # made in a row can share one (then their order is their random suffixes').
    made = []
    for number, owner in enumerate(("ann", "bob", "ann")):
        with time_machine.travel(datetime.now(UTC) + timedelta(milliseconds=number), tick=False):
            made.append(service.create(f"{number}.txt", b"x", owner=owner)[0])
    first, second, third = made
    assert [e.id for e in service.list()] == [third.id, second.id, first.id]
    assert [e.id for e in service.list(owner="ann")] == [third.id, first.id]
    assert [e.id for e in service.list(limit=1)] == [third.id]


def test_delete_removes_both_files(service: ExportService, settings: Settings) -> None:
    export, _ = service.create("d.txt", b"d")
    assert service.delete(export.id) is True
    assert _names(settings.export_path) == []
    assert service.delete(export.id) is False
    with pytest.raises(ExportNotFoundError):
        service.get(export.id)


def test_missing_or_damaged_data_file_is_not_found(service: ExportService) -> None:
    export, _ = service.create("m.txt", b"abc")
    export.path.write_bytes(b"abcdef")  # size no longer matches the metadata
    with pytest.raises(ExportNotFoundError, match="damaged"):
        service.get(export.id)
    export.path.unlink()
    with pytest.raises(ExportNotFoundError):
        service.open(export.id)


def test_symlink_planted_as_data_is_never_read(service: ExportService, tmp_path: Path) -> None:
    export, _ = service.create("s.txt", b"abc")
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"xyz")
    export.path.unlink()
    export.path.symlink_to(secret)
    with pytest.raises(ExportNotFoundError):
        service.open(export.id)


def test_malformed_ids_are_not_found(service: ExportService) -> None:
    for bad in ("../etc/passwd", "", "1740830400000-XYZ"):
        with pytest.raises(ExportNotFoundError):
            service.get(bad)


def test_export_dir_symlink_is_refused(settings: Settings, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    settings.export_path.symlink_to(real)
    with pytest.raises(ExportDirectoryError, match="symlink"):
        ExportService(settings).create("x.txt", b"x")
    assert list(real.iterdir()) == []


@pytest.mark.parametrize(("given", "shown"), [
    ("report.csv", "report.csv"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\a.txt", "a.txt"),
    ("bad\r\nname.txt", "badname.txt"),
    ("x" * 300 + ".csv", "x" * 196 + ".csv"),
])
def test_clean_filename(given: str, shown: str) -> None:
    assert clean_filename(given) == shown


def test_empty_filename_is_refused() -> None:
    with pytest.raises(ExportError, match="empty"):
        clean_filename("../")


def test_to_dict_hides_the_server_path(service: ExportService) -> None:
    export, _ = service.create("p.txt", b"p")
    shown = export.to_dict()
    assert "path" not in shown
    assert shown["id"] == export.id and shown["size_bytes"] == 1
