"""The export directory's identity marker: written once, read back, compared with workers'."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from bullpen.exports.identity import MARKER, ensure_identity, read_identity, workers_elsewhere
from bullpen.runtime.heartbeat import WorkerInfo


def _worker(pid: int, export_dir_id: str | None) -> WorkerInfo:
    return WorkerInfo(f"w{pid}", "host-a", pid, "1", 1, 0.0, 0.0, [], {}, [], "/x",
                      export_dir_id)


def test_written_once_and_kept(tmp_path: Path) -> None:
    first = ensure_identity(tmp_path)
    assert first is not None and len(first) == 32
    assert ensure_identity(tmp_path) == read_identity(tmp_path) == first
    assert sorted(path.name for path in tmp_path.iterdir()) == [MARKER]
    assert (tmp_path / MARKER).stat().st_mode & 0o777 == 0o600


def test_two_directories_two_ids_and_none_without_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert ensure_identity(tmp_path / "a") != ensure_identity(tmp_path / "b")
    assert ensure_identity(tmp_path / "missing") is None
    assert not (tmp_path / "missing").exists()


def test_a_marker_that_is_not_bullpens_is_no_identity(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text("hello\n")
    assert read_identity(tmp_path) is None


def test_workers_without_an_id_never_count() -> None:
    own = "a" * 32
    workers = [_worker(1, own), _worker(2, None), _worker(3, "b" * 32), _worker(3, "b" * 32)]
    assert [worker.pid for worker in workers_elsewhere(own, workers)] == [3]
    assert [worker.pid for worker in workers_elsewhere(None, workers)] == [1, 3]


def test_an_older_workers_heartbeat_reads_as_no_id() -> None:
    record = asdict(_worker(4, "c" * 32))
    del record["export_dir"], record["export_dir_id"]
    assert WorkerInfo(**json.loads(json.dumps(record))).export_dir_id is None
