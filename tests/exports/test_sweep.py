"""The cleanup walk on its own (no Redis): boundaries, bounds, counts and the races it survives.

Races are made real, not simulated: the walk's callbacks (progress after each entry, each
expired export) and its directory check are the points where another process could act, and
the tests change the filesystem there.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bullpen.errors import ExportDirectoryError
from bullpen.exports import naming, store, sweep
from bullpen.exports.naming import Kind
from tests.helpers.exports import immutable, listing

NOW_S = 1_900_000_000.0
HOUR_S = 3600.0


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    place = tmp_path / "exports"
    place.mkdir(mode=0o700)
    return place


def policy(*, cutoff_s: float = NOW_S - 24 * HOUR_S,
           temp_cutoff_s: float = NOW_S - HOUR_S) -> sweep.SweepPolicy:
    return sweep.SweepPolicy(cutoff_s=cutoff_s, temp_cutoff_s=temp_cutoff_s)


def old_id(hours: float = 48) -> str:
    return naming.new_export_id(NOW_S - hours * HOUR_S)


def write(path: Path, content: bytes = b"x") -> Path:
    path.write_bytes(content)
    return path


def data(directory: Path, export_id: str, content: bytes = b"x") -> Path:
    return write(directory / naming.data_name(export_id), content)


def meta(directory: Path, export_id: str, content: bytes = b"{}") -> Path:
    return write(directory / naming.meta_name(export_id), content)


def test_an_export_created_exactly_at_the_cutoff_is_kept_and_one_ms_older_goes(
        directory: Path) -> None:
    created_ms = int(NOW_S * 1000) - 24 * 3_600_000
    at_cutoff, older = f"{created_ms:013d}-{'a' * 16}", f"{created_ms - 1:013d}-{'b' * 16}"
    for export_id in (at_cutoff, older):
        data(directory, export_id)
        meta(directory, export_id)
    report = sweep.sweep(directory, policy(cutoff_s=created_ms / 1000))
    assert listing(directory) == {naming.data_name(at_cutoff), naming.meta_name(at_cutoff)}
    assert (report.deleted, report.kept, report.expired) == (1, 1, [older])


def test_kept_counts_fresh_exports_by_their_data_file(directory: Path) -> None:
    fresh = [naming.new_export_id(NOW_S) for _ in range(3)]
    for export_id in fresh:
        data(directory, export_id)
    meta(directory, fresh[0])
    meta(directory, naming.new_export_id(NOW_S))  # a fresh metadata file alone: no export yet
    report = sweep.sweep(directory, policy())
    assert (report.kept, report.deleted, report.scanned) == (3, 0, 5)
    assert len(listing(directory)) == 5


def test_a_temp_file_touched_exactly_at_the_temp_cutoff_is_in_progress(directory: Path) -> None:
    cutoff_s = NOW_S - HOUR_S
    at_cutoff = write(directory / naming.temp_name(old_id(), Kind.DATA))
    older = write(directory / naming.temp_name(old_id(), Kind.META), b"abc")
    os.utime(at_cutoff, (cutoff_s, cutoff_s))
    os.utime(older, (cutoff_s - 1, cutoff_s - 1))
    report = sweep.sweep(directory, policy(temp_cutoff_s=cutoff_s))
    assert listing(directory) == {at_cutoff.name}
    assert (report.deleted_temp, report.bytes_freed) == (1, 3)
    assert report.skipped == {sweep.IN_PROGRESS: 1}


def test_entries_deleted_by_someone_else_mid_walk_count_as_vanished_not_errors(
        directory: Path) -> None:
    """Data and temp files count as vanished; metadata does not (its data file counts), except
    an expired one the walk held back for its data file and then could not remove."""
    for _ in range(3):
        data(directory, old_id())  # no metadata: each one's lookup finds nothing, uncounted
    for _ in range(2):
        temp = write(directory / naming.temp_name(old_id(), Kind.DATA))
        os.utime(temp, (NOW_S - 5 * HOUR_S, NOW_S - 5 * HOUR_S))
    for _ in range(2):
        meta(directory, old_id())
    first_was_meta = []

    def delete_the_rest(scanned: int) -> None:
        if scanned == 1:  # the listing is already read: the walk still meets every name
            left = listing(directory)
            first_was_meta.append(sum(not name.endswith(".meta") for name in left) == 5)
            for name in left:
                os.unlink(directory / name)

    report = sweep.sweep(directory, policy(), on_progress=delete_the_rest,
                         progress_every=1)
    assert report.scanned == 7 and report.ok
    if first_was_meta[0]:
        assert (report.vanished, report.deleted + report.deleted_temp) == (6, 0)
    else:
        assert (report.vanished, report.deleted + report.deleted_temp) == (4, 1)


def test_orphan_metadata_removed_by_someone_else_before_the_end_is_vanished(
        directory: Path) -> None:
    orphans = [meta(directory, old_id()) for _ in range(3)]

    def delete_all(scanned: int) -> None:
        if scanned == 3:
            for path in orphans:
                path.unlink(missing_ok=True)  # also called once more at the end

    report = sweep.sweep(directory, policy(), on_progress=delete_all,
                         progress_every=1)
    assert (report.vanished, report.deleted_orphans, report.bytes_freed) == (3, 0, 0)
    assert report.ok


def test_several_orphans_are_each_counted_with_their_bytes(directory: Path) -> None:
    for content in (b"{}", b"{ }", b"{  }"):
        meta(directory, old_id(), content)
    kept = old_id()
    data(directory, kept)  # its metadata expired too, but its data file is here: a pair
    meta(directory, kept)
    report = sweep.sweep(directory, policy())
    assert (report.deleted_orphans, report.deleted, report.bytes_freed) == (3, 1, 2 + 3 + 4 + 3)
    assert listing(directory) == set()


def replace_with(kind: str, path: Path, outside: Path) -> None:
    if kind == "symlink":
        path.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()


@pytest.mark.parametrize(("kind", "reason"), [
    ("symlink", sweep.SYMLINK), ("fifo", sweep.NOT_REGULAR), ("directory", sweep.DIRECTORY)])
def test_metadata_swapped_for_a_non_file_after_its_data_went_is_left_alone(
        directory: Path, tmp_path: Path, kind: str, reason: str) -> None:
    """The metadata name is examined with lstat just before removal, whatever the listing said."""
    outside = write(tmp_path / "precious.txt", b"keep me")
    export_id = old_id()
    data(directory, export_id)
    swapped = directory / naming.meta_name(export_id)

    def swap_in(name: str, size: int) -> None:
        replace_with(kind, swapped, outside)

    report = sweep.sweep(directory, policy(), on_expired=swap_in)
    assert report.deleted == 1 and report.ok
    assert os.path.lexists(swapped) and outside.read_bytes() == b"keep me"
    assert report.skipped[reason] >= 1  # once when examined; the listing may show it again


def test_metadata_whose_data_name_is_a_symlink_is_an_orphan(directory: Path,
                                                            tmp_path: Path) -> None:
    outside = write(tmp_path / "precious.txt", b"keep me")
    export_id = old_id()
    meta(directory, export_id)
    (directory / naming.data_name(export_id)).symlink_to(outside)
    report = sweep.sweep(directory, policy())
    assert listing(directory) == {naming.data_name(export_id)}
    assert (report.deleted_orphans, report.skipped) == (1, {sweep.SYMLINK: 1})
    assert outside.read_bytes() == b"keep me"


def test_special_files_are_refused_as_not_regular_whatever_their_name(directory: Path) -> None:
    os.mkfifo(directory / "queue.fifo")
    os.mkfifo(directory / naming.data_name(old_id()))
    report = sweep.sweep(directory, policy())
    assert report.skipped == {sweep.NOT_REGULAR: 2}
    assert len(listing(directory)) == 2


@contextlib.contextmanager
def swapped_after_check(monkeypatch: pytest.MonkeyPatch, swap: Callable[[Path], None]
                        ) -> Iterator[None]:
    """Run `swap(directory)` between cleanup's check of the export directory and its open."""
    real_check = store.check_directory

    def check_then_swap(path: Path) -> os.stat_result:
        checked = real_check(path)
        swap(path)
        return checked

    monkeypatch.setattr(sweep, "check_directory", check_then_swap)
    yield


def _removed(path: Path) -> None:
    for name in listing(path):
        (path / name).unlink()
    path.rmdir()


def _moved_and(replacement: Callable[[Path, Path], object]) -> Callable[[Path], None]:
    def swap(path: Path) -> None:
        moved = path.with_name("moved-away")
        path.rename(moved)
        replacement(path, moved)
    return swap


@pytest.mark.parametrize(("swap", "message"), [
    (_removed, "cannot open export directory '{}': No such file or directory; check it exists"),
    (_moved_and(lambda path, moved: path.symlink_to(moved)),
     "cannot open export directory '{}': Not a directory"),
    (_moved_and(lambda path, moved: path.write_bytes(b"")),
     "cannot open export directory '{}': Not a directory"),
    (_moved_and(lambda path, moved: path.mkdir()),
     "export directory '{}' was replaced while cleanup opened it; run cleanup again"),
], ids=["removed", "symlink", "file", "other-directory"])
def test_an_export_directory_swapped_while_cleanup_opens_it_is_refused(
        directory: Path, monkeypatch: pytest.MonkeyPatch, swap: Callable[[Path], None],
        message: str) -> None:
    export_id = old_id()
    data(directory, export_id)
    with swapped_after_check(monkeypatch, swap), pytest.raises(ExportDirectoryError) as caught:
        sweep.sweep(directory, policy())
    assert str(caught.value).startswith(message.format(directory))
    moved = directory.with_name("moved-away")
    if moved.exists():
        assert listing(moved) == {naming.data_name(export_id)}


def test_a_stop_ends_the_walk_and_holds_back_the_orphans_it_has_not_confirmed(
        directory: Path) -> None:
    for _ in range(4):
        meta(directory, old_id())
    stop = threading.Event()
    progress: list[int] = []

    def stop_after_two(scanned: int) -> None:
        progress.append(scanned)
        if scanned == 2:
            stop.set()

    report = sweep.sweep(directory, policy(), stop=stop, on_progress=stop_after_two,
                         progress_every=1)
    assert report.stopped_early is True
    assert (report.scanned, report.deleted_orphans, len(listing(directory))) == (2, 0, 4)
    assert progress == [1, 2, 2]  # the last call reports the total, as after a whole walk


def test_progress_is_reported_every_500_entries_by_default_and_at_the_end(
        directory: Path) -> None:
    for number in range(1001):
        write(directory / f"foreign-{number}", b"")
    progress: list[int] = []
    report = sweep.sweep(directory, policy(), on_progress=progress.append)
    assert progress == [500, 1000, 1001]
    assert report.skipped == {sweep.FOREIGN: 1001}
    assert len(report.skipped_examples) == sweep.MAX_EXAMPLES == 20


def test_a_large_walk_lists_the_first_1000_expired_ids_and_counts_them_all(
        directory: Path) -> None:
    for _ in range(1001):
        data(directory, old_id())  # bare data files: half the files of pairs, same decisions
    report = sweep.sweep(directory, policy())  # no progress callback over more than 500
    assert (report.deleted, len(report.expired), report.bytes_freed) == (1001, 1000, 1001)
    assert listing(directory) == set()


def test_held_back_metadata_past_the_memory_bound_is_settled_at_once(
        directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "MAX_REMEMBERED", 2)
    for content in (b"{}", b"{ }", b"{  }", b"{   }", b"{    }"):
        meta(directory, old_id(), content)
    report = sweep.sweep(directory, policy())
    assert (report.deleted_orphans, report.bytes_freed) == (5, 2 + 3 + 4 + 5 + 6)
    assert listing(directory) == set()


def test_files_that_cannot_be_removed_are_each_counted_and_the_first_100_listed(
        directory: Path) -> None:
    paths = [data(directory, old_id()) for _ in range(101)]
    with contextlib.ExitStack() as stack:
        for path in paths:
            stack.enter_context(immutable(path))
        report = sweep.sweep(directory, policy())
    assert (report.error_count, len(report.errors), report.deleted) == (101, 100, 0)
    assert report.errors[0] == {"name": report.errors[0]["name"],
                                "error": "Operation not permitted"}
    assert {error["name"] for error in report.errors} < {path.name for path in paths}
    assert not report.ok


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as a service often has")


@ROOT_ONLY
def test_cleanup_run_as_root_deletes_the_directory_owners_files_and_no_one_elses(
        directory: Path) -> None:
    service_user = 4321
    os.chown(directory, service_user, service_user)
    theirs, roots = old_id(), old_id()
    for path in (data(directory, theirs), meta(directory, theirs)):
        os.chown(path, service_user, service_user)
    data(directory, roots)
    meta(directory, roots)
    report = sweep.sweep(directory, policy())
    assert listing(directory) == {naming.data_name(roots), naming.meta_name(roots)}
    assert (report.deleted, report.skipped) == (1, {sweep.OTHER_OWNER: 2})


def test_cleanup_deletes_files_of_its_own_user_or_as_root_of_the_directory_owner() -> None:
    if os.geteuid() != 0:
        assert sweep.service_uid(4321) == os.geteuid()
        return
    assert sweep.service_uid(4321) == 4321
    os.seteuid(4321)  # the same process as an ordinary user (restored below)
    try:
        assert sweep.service_uid(1234) == 4321
    finally:
        os.seteuid(0)


def test_an_expired_data_file_without_metadata_is_deleted_with_nothing_vanished(
        directory: Path) -> None:
    export_id = old_id()
    data(directory, export_id)  # a crash before the metadata's rename: no metadata ever
    report = sweep.sweep(directory, policy())
    assert (report.deleted, report.vanished, report.expired, report.ok) == (1, 0, [export_id], True)


@ROOT_ONLY
def test_an_entry_cleanup_may_not_examine_is_an_error_naming_it(directory: Path) -> None:
    """Run as an ordinary user over a directory it may list but not search: each lstat fails."""
    service_user = 4321
    parents = [directory.parent, directory.parent.parent, directory.parent.parent.parent]
    modes = [stat.S_IMODE(os.stat(parent).st_mode) for parent in parents]
    export_id = old_id()
    data(directory, export_id)
    os.chown(directory, service_user, service_user)
    os.chmod(directory, 0o600)  # readable (listed), not searchable (no lstat inside)
    try:
        for parent in parents:
            os.chmod(parent, 0o711)
        os.seteuid(service_user)
        try:
            report = sweep.sweep(directory, policy())
        finally:
            os.seteuid(0)
    finally:
        for parent, mode in zip(parents, modes, strict=True):
            os.chmod(parent, mode)
        os.chmod(directory, 0o700)
    assert report.errors == [{"name": naming.data_name(export_id), "error": "Permission denied"}]
    assert (report.error_count, report.deleted) == (1, 0)
    assert (directory / naming.data_name(export_id)).exists()
