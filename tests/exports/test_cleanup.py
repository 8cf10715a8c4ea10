"""Export cleanup: the cleanup table (what is left on disk, exactly), lock, stats, event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from bullpen.errors import CleanupLockedError, ExportDirectoryError, ExportError
from bullpen.exports import identity, naming, sweep
from bullpen.exports.cleanup import run_cleanup
from bullpen.exports.service import ExportService
from bullpen.redis_lock import RedisLock
from bullpen.settings import Settings
from tests.helpers.exports import age_file, immutable, listing, make_export, make_export_id, pair

HOUR_S = 3600


@pytest.fixture
def service(settings: Settings) -> ExportService:
    return ExportService(settings)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the export dir holding things cleanup must never touch."""
    place = tmp_path / "outside"
    place.mkdir()
    (place / "precious.txt").write_text("keep me")
    old_id = naming.new_export_id((datetime.now(UTC) - timedelta(days=9)).timestamp())
    (place / naming.data_name(old_id)).write_text("an old bullpen-named file elsewhere")
    return place


@pytest.fixture
def planted(service: ExportService, settings: Settings, outside: Path) -> dict[str, Any]:
    """One export directory holding every case of the cleanup table."""
    directory = settings.export_path
    expired = make_export(service, timedelta(hours=25))
    fresh = make_export(service, timedelta(hours=1))
    in_progress = directory / naming.temp_name(naming.new_export_id(), naming.Kind.DATA)
    in_progress.write_bytes(b"still writing")
    abandoned = directory / naming.temp_name(make_export_id(hours=80), naming.Kind.DATA)
    abandoned.write_bytes(b"crashed writer")
    age_file(abandoned, timedelta(hours=72))
    abandoned_meta = directory / naming.temp_name(make_export_id(hours=90), naming.Kind.META)
    abandoned_meta.write_bytes(b"{")
    age_file(abandoned_meta, timedelta(hours=90))
    link_name = naming.data_name(make_export_id(hours=30))
    (directory / link_name).symlink_to(outside / "precious.txt")
    (directory / "link-to-dir").symlink_to(outside)
    (directory / "notes.txt").write_text("someone else's file")
    age_file(directory / "notes.txt", timedelta(days=30))
    orphan = make_export_id(hours=26)
    (directory / naming.meta_name(orphan)).write_text("{}")
    locked_out = make_export(service, timedelta(hours=48))
    os.chmod(directory / naming.data_name(locked_out), 0)
    sealed = directory / "sealed-dir"
    sealed.mkdir(mode=0)
    undecodable = os.fsencode(str(directory)) + b"/r\xe9sum\xe9.txt"
    Path(os.fsdecode(undecodable)).write_text("latin-1 name")
    marker = identity.ensure_identity(directory)
    age_file(directory / identity.MARKER, timedelta(days=30))
    return {"marker": marker, "expired": expired, "fresh": fresh, "in_progress": in_progress.name,
            "abandoned": abandoned.name, "link_name": link_name, "orphan": orphan,
            "locked_out": locked_out, "undecodable": os.fsdecode(undecodable).rsplit("/", 1)[1]}


async def test_cleanup_table(settings: Settings, raw_redis: Any, planted: dict[str, Any],
                             outside: Path) -> None:
    directory = os.fsencode(str(settings.export_path))
    sizes = {name: os.lstat(os.path.join(directory, name)).st_size
             for name in os.listdir(directory)}
    report = await run_cleanup(settings, raw_redis)
    left = set(os.listdir(directory))
    assert report.scanned == len(sizes)
    assert report.bytes_freed == sum(size for name, size in sizes.items() if name not in left)
    expected_left = pair(planted["fresh"]) | {
        planted["in_progress"], planted["link_name"], "link-to-dir", "notes.txt", "sealed-dir",
        planted["undecodable"], identity.MARKER,
    }
    assert listing(settings.export_path) == expected_left
    assert identity.read_identity(settings.export_path) == planted["marker"] is not None
    assert len(os.listdir(outside)) == 2
    assert (outside / "precious.txt").read_text() == "keep me"
    assert sorted(report.expired) == sorted([planted["expired"], planted["locked_out"]])
    assert (report.deleted, report.deleted_temp, report.deleted_orphans) == (2, 2, 1)
    assert report.kept == 1
    assert report.error_count == 0 and report.vanished == 0
    assert report.skipped == {
        sweep.IN_PROGRESS: 1, sweep.SYMLINK: 2, sweep.FOREIGN: 2, sweep.DIRECTORY: 1,
    }
    shown_names = {example["name"]: example["reason"] for example in report.skipped_examples}
    assert shown_names["r\\xe9sum\\xe9.txt"] == sweep.FOREIGN
    assert shown_names["link-to-dir"] == sweep.SYMLINK
    json.dumps(report.to_dict())  # printable even with an undecodable name


async def test_dry_run_lists_exactly_the_expired_and_deletes_nothing(
        settings: Settings, raw_redis: Any, planted: dict[str, Any]) -> None:
    before = listing(settings.export_path)
    seen: list[tuple[str, int]] = []
    report = await run_cleanup(settings, raw_redis, dry_run=True,
                               on_expired=lambda name, size: seen.append((name, size)))
    assert listing(settings.export_path) == before
    names = [naming.data_name(planted[key]) for key in ("expired", "locked_out")]
    assert sorted(seen) == sorted(
        (name, (settings.export_path / name).lstat().st_size) for name in names)
    assert report.dry_run and report.deleted == 2
    assert report.bytes_freed > 0


async def test_older_than_overrides_the_max_age(settings: Settings, raw_redis: Any,
                                                service: ExportService) -> None:
    two_hours = make_export(service, timedelta(hours=2))
    recent = make_export(service, timedelta(minutes=10))
    report = await run_cleanup(settings, raw_redis, older_than_hours=1)
    assert report.expired == [two_hours]
    assert listing(settings.export_path) == pair(recent)


async def test_boundary_in_frozen_time(settings: Settings, raw_redis: Any,
                                       service: ExportService) -> None:
    created = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(created, tick=False):
        export, _ = service.create("b.txt", b"b")
    with time_machine.travel(created + timedelta(hours=24, seconds=-1)):
        assert (await run_cleanup(settings, raw_redis)).deleted == 0
    with time_machine.travel(created + timedelta(hours=24, seconds=1)):
        assert (await run_cleanup(settings, raw_redis)).expired == [export.id]
    assert listing(settings.export_path) == set()


def test_file_removed_mid_run_is_not_an_error(settings: Settings,
                                              service: ExportService) -> None:
    ids = [make_export(service, timedelta(hours=30)) for _ in range(6)]
    calls: list[int] = []

    def remove_everything_once(scanned: int) -> None:
        if not calls:
            for export_id in ids:
                service.delete(export_id)
        calls.append(scanned)

    now_s = datetime.now(UTC).timestamp()
    report = sweep.sweep(settings.export_path, sweep.SweepPolicy(now_s - 24 * HOUR_S, 0),
                         on_progress=remove_everything_once, progress_every=1)
    assert report.error_count == 0
    assert report.vanished >= 1
    assert report.deleted <= 1
    # Progress after each entry (progress_every=1), and once more with the total at the end.
    assert calls[0] == 1 and calls[-1] == calls[-2] == report.scanned
    assert listing(settings.export_path) == set()


async def test_export_dir_missing(settings: Settings, raw_redis: Any) -> None:
    with pytest.raises(ExportDirectoryError, match="does not exist"):
        await run_cleanup(settings, raw_redis)
    assert await raw_redis.exists(settings.keyspace.cleanup_lock) == 0


async def test_export_dir_is_a_symlink(settings: Settings, raw_redis: Any, tmp_path: Path
                                       ) -> None:
    real = tmp_path / "real-exports"
    real.mkdir()
    old = real / naming.data_name(make_export_id(hours=100))
    old.write_text("old")
    settings.export_path.symlink_to(real)
    with pytest.raises(ExportDirectoryError, match="symlink"):
        await run_cleanup(settings, raw_redis)
    assert old.exists()


@pytest.fixture
def undeletable(settings: Settings, service: ExportService) -> Iterator[Path]:
    export_id = make_export(service, timedelta(hours=30))
    with immutable(settings.export_path / naming.data_name(export_id)) as path:
        yield path


async def test_undeletable_file_is_an_error_and_the_rest_goes_on(
        settings: Settings, raw_redis: Any, service: ExportService, undeletable: Path) -> None:
    other = make_export(service, timedelta(hours=30))
    report = await run_cleanup(settings, raw_redis)
    assert not report.ok
    assert report.errors == [{"name": undeletable.name, "error": "Operation not permitted"}]
    assert listing(settings.export_path) == {undeletable.name,
                                             undeletable.name.replace(".data", ".meta")}
    assert other in report.expired


@pytest.fixture
def foreign_mount(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """An expired bullpen-named file that is really a file on another filesystem (tmpfs)."""
    settings.export_path.mkdir()
    mount_dir = tmp_path / "tmpfs"
    mount_dir.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(mount_dir)],
                      capture_output=True, check=False).returncode:
        pytest.skip("cannot mount tmpfs here")
    (mount_dir / "inner").write_text("on tmpfs")
    target = settings.export_path / naming.data_name(make_export_id(hours=50))
    target.write_text("")
    subprocess.run(["mount", "--bind", str(mount_dir / "inner"), str(target)], check=True)
    yield target
    subprocess.run(["umount", str(target)], check=False)
    subprocess.run(["umount", str(mount_dir)], check=False)


async def test_other_filesystem_is_never_touched(settings: Settings, raw_redis: Any,
                                                 foreign_mount: Path) -> None:
    report = await run_cleanup(settings, raw_redis)
    assert report.skipped == {sweep.OTHER_FILESYSTEM: 1}
    assert await asyncio.to_thread(foreign_mount.read_text) == "on tmpfs"


async def test_a_held_lock_skips_the_run(settings: Settings, raw_redis: Any,
                                         service: ExportService) -> None:
    expired = make_export(service, timedelta(hours=30))
    holder = RedisLock(raw_redis, settings.keyspace.cleanup_lock, 10_000)
    assert await holder.acquire()
    try:
        with pytest.raises(CleanupLockedError, match="another export cleanup is running"):
            await run_cleanup(settings, raw_redis)
    finally:
        await holder.release()
    assert pair(expired) <= listing(settings.export_path)
    assert (await run_cleanup(settings, raw_redis)).expired == [expired]


async def test_real_run_records_stats_and_last_report(settings: Settings, raw_redis: Any,
                                                      service: ExportService) -> None:
    make_export(service, timedelta(hours=30), b"12345")
    keys = settings.keyspace
    await run_cleanup(settings, raw_redis, dry_run=True)
    assert await raw_redis.exists(keys.cleanup_stats, keys.cleanup_last) == 0
    report = await run_cleanup(settings, raw_redis)
    stats = await raw_redis.hgetall(keys.cleanup_stats)
    assert int(stats["deleted_files"]) == 1
    assert int(stats["deleted_bytes"]) == report.bytes_freed > 5
    assert not await raw_redis.exists(keys.task_stats)  # no pseudo-task among the workers' stats
    last = json.loads(await raw_redis.get(keys.cleanup_last))
    assert last["deleted"] == 1 and last["expired"] == report.expired


async def test_walk_runs_off_the_event_loop(settings: Settings, raw_redis: Any,
                                            service: ExportService) -> None:
    make_export(service, timedelta(hours=30))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    def slow_walk(_scanned: int) -> None:

        time.sleep(0.5)  # a long walk: blocking here must not block the loop

    ticking = asyncio.create_task(ticker())
    try:
        await run_cleanup(settings, raw_redis, on_progress=slow_walk)
    finally:
        ticking.cancel()
    assert ticks >= 20


async def test_bad_older_than_is_refused(settings: Settings, raw_redis: Any) -> None:

    for bad in (-1, "12", float("nan"), True):
        with pytest.raises(ExportError, match="older_than_hours"):
            await run_cleanup(settings, raw_redis, older_than_hours=bad)  # type: ignore[arg-type]


async def test_logs_the_specified_lines(settings: Settings, raw_redis: Any, service: ExportService,
                                   caplog: pytest.LogCaptureFixture) -> None:
    make_export(service, timedelta(hours=30))
    logger = logging.getLogger("bullpen.cleanup")
    logger.addHandler(caplog.handler)  # bullpen's logger may not propagate to the root
    try:
        caplog.set_level("INFO", logger="bullpen.cleanup")
        await run_cleanup(settings, raw_redis)
    finally:
        logger.removeHandler(caplog.handler)
    # dict.fromkeys: a record may arrive twice (our handler and the root's).
    messages = list(dict.fromkeys(
        r.getMessage() for r in caplog.records if r.name == "bullpen.cleanup"))
    assert messages[:2] == ["[exports] Starting expired exports cleanup...",
                            "[exports] Deleted 1 expired export files"]


@pytest.fixture
def bind_mounted(settings: Settings, service: ExportService, outside: Path) -> Iterator[Path]:
    """An expired export with a file from outside bind-mounted over its data (one filesystem,
    so the device check cannot tell; unlink answers EBUSY)."""
    target = settings.export_path / naming.data_name(make_export(service, timedelta(hours=30)))
    if subprocess.run(["mount", "--bind", str(outside / "precious.txt"), str(target)],
                      capture_output=True, check=False).returncode:
        pytest.skip("cannot bind-mount here")
    yield target
    subprocess.run(["umount", str(target)], check=False)


async def test_a_bind_mount_is_skipped_not_an_error(settings: Settings, raw_redis: Any,
                                                    bind_mounted: Path, outside: Path) -> None:
    report = await run_cleanup(settings, raw_redis)
    assert report.ok, report.errors
    assert report.skipped == {sweep.MOUNT_POINT: 1} and report.deleted == 0
    assert await asyncio.to_thread((outside / "precious.txt").read_text) == "keep me"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
async def test_files_of_another_user_are_never_deleted(settings: Settings, raw_redis: Any,
                                                       service: ExportService) -> None:
    theirs = make_export(service, timedelta(hours=30))
    for name in pair(theirs):
        os.chown(settings.export_path / name, 65534, 65534)
    ours = make_export(service, timedelta(hours=30))
    report = await run_cleanup(settings, raw_redis)
    assert report.expired == [ours]
    assert listing(settings.export_path) == pair(theirs)
    assert report.skipped == {sweep.OTHER_OWNER: 2}


class _Counting:
    """Counts the lstat and unlink calls the walk makes (the calls still happen)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stats = self.unlinks = 0
        real_stat, real_unlink = os.stat, os.unlink

        def counted_stat(*args: Any, **kwargs: Any) -> os.stat_result:
            self.stats += 1
            return real_stat(*args, **kwargs)

        def counted_unlink(*args: Any, **kwargs: Any) -> None:
            self.unlinks += 1
            real_unlink(*args, **kwargs)

        monkeypatch.setattr(os, "stat", counted_stat)
        monkeypatch.setattr(os, "unlink", counted_unlink)


def _walk_in_order(directory: Path, policy: sweep.SweepPolicy, reverse: bool
                   ) -> sweep.CleanupReport:
    """The walk over the directory's entries in name order (data before meta) or reversed."""
    report = sweep.CleanupReport()
    fd, opened = sweep._open_directory(directory)
    try:
        walker = sweep._Sweeper(fd, opened, policy, report, None)
        with os.scandir(fd) as listing:
            entries = sorted(listing, key=lambda entry: entry.name, reverse=reverse)
        for entry in entries:
            report.scanned += 1
            walker.visit(entry)
        walker.finish()
    finally:
        os.close(fd)
    return report


@pytest.mark.parametrize("meta_first", [False, True])
def test_an_expired_pair_costs_what_find_pays_and_a_fresh_one_nothing(
        offline_settings: Settings, monkeypatch: pytest.MonkeyPatch, meta_first: bool) -> None:
    directory = offline_settings.export_path
    directory.mkdir(mode=0o700, parents=True)
    expired = [make_export_id(hours=30) for _ in range(20)]
    fresh = [make_export_id(hours=1) for _ in range(30)]
    for export_id in expired + fresh:
        for name in pair(export_id):
            (directory / name).write_bytes(b"x")
    orphan = make_export_id(hours=40)
    (directory / naming.meta_name(orphan)).write_bytes(b"{}")
    counting = _Counting(monkeypatch)
    now_s = datetime.now(UTC).timestamp()
    report = _walk_in_order(directory, sweep.SweepPolicy(now_s - 24 * HOUR_S, 0), meta_first)
    assert (report.deleted, report.deleted_orphans, report.kept) == (20, 1, 30)
    assert listing(directory) == set().union(*(pair(export_id) for export_id in fresh))
    # find -delete: one stat and one unlink per removed file; the orphan also checks its data.
    assert counting.unlinks == 2 * 20 + 1
    assert counting.stats == 2 * 20 + 1 + 1
