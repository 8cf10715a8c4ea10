"""`bullpen cleanup-exports` and the `exports.cleanup` task, as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bullpen.adapter import JobOptions, QueueClient
from bullpen.exports import identity, naming
from bullpen.exports.service import ExportService
from bullpen.redis_lock import RedisLock
from bullpen.settings import Settings
from tests.helpers.exports import (
    finished,
    immutable,
    listing,
    make_export,
    make_export_id,
    pair,
    plant_data_files,
)
from tests.helpers.processes import BULLPEN, Proc, run_cli, start_worker

STARTING = "[cleanup] [exports] Starting expired exports cleanup..."


@pytest.fixture
def service(settings: Settings) -> ExportService:
    return ExportService(settings)


@pytest.fixture
def planted(service: ExportService, settings: Settings, tmp_path: Path) -> dict[str, Any]:
    """Two expired exports, one fresh, plus a symlink and a foreign file that must stay."""
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    directory = settings.export_path
    expired = sorted(make_export(service, timedelta(hours=h)) for h in (25, 40))
    fresh = make_export(service, timedelta(hours=2))
    link = naming.data_name(make_export_id(hours=99))
    (directory / link).symlink_to(outside)
    (directory / "foreign.csv").write_text("not ours")
    identity.ensure_identity(directory)  # as a worker's heartbeat writes it: it stays
    survivors = pair(fresh) | {link, "foreign.csv", identity.MARKER}
    return {"expired": expired, "fresh": fresh, "survivors": survivors, "outside": outside}


def test_dry_run_lists_exactly_the_expired_exports(env: dict[str, str], settings: Settings,
                                                   planted: dict[str, Any]) -> None:
    before = listing(settings.export_path)
    result = run_cli(["cleanup-exports", "--dry-run"], env)
    assert result.returncode == 0, result.stderr
    listed = sorted(line.split()[2] for line in result.stdout.splitlines()
                    if line.startswith("would delete "))
    assert listed == sorted(naming.data_name(export_id) for export_id in planted["expired"])
    assert "Would delete 2 expired exports" in result.stdout
    assert listing(settings.export_path) == before


def test_real_run_deletes_only_the_expired(env: dict[str, str], settings: Settings,
                                           planted: dict[str, Any]) -> None:
    result = run_cli(["cleanup-exports"], env)
    assert result.returncode == 0, result.stderr
    assert STARTING in result.stderr
    assert "[cleanup] [exports] Deleted 2 expired export files" in result.stderr
    assert listing(settings.export_path) == planted["survivors"]
    assert planted["outside"].read_text() == "keep"
    assert "skipped 1: symlink (never followed)" in result.stdout


def test_json_report_and_older_than(env: dict[str, str], settings: Settings,
                                    planted: dict[str, Any]) -> None:
    result = run_cli(["cleanup-exports", "--older-than", "1", "--json"], env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(report["expired"]) == sorted([*planted["expired"], planted["fresh"]])
    assert report["deleted"] == 3 and report["error_count"] == 0
    assert listing(settings.export_path) == planted["survivors"] - pair(planted["fresh"])


def test_missing_export_dir_exits_1_with_a_clear_error(env: dict[str, str]) -> None:
    result = run_cli(["cleanup-exports"], env)
    assert result.returncode == 1
    assert "export directory" in result.stderr and "does not exist" in result.stderr


def test_bad_older_than_is_a_usage_error(env: dict[str, str]) -> None:
    result = run_cli(["cleanup-exports", "--older-than", "-3"], env)
    assert result.returncode == 2


@pytest.fixture
def undeletable(settings: Settings, service: ExportService) -> Iterator[Path]:
    export_id = make_export(service, timedelta(hours=30))
    with immutable(settings.export_path / naming.data_name(export_id)) as path:
        yield path


def test_an_entry_that_cannot_be_deleted_exits_1(env: dict[str, str], undeletable: Path
                                                  ) -> None:
    result = run_cli(["cleanup-exports"], env)
    assert result.returncode == 1
    assert f"error: {undeletable.name}: Operation not permitted" in result.stdout


async def test_held_lock_is_reported_and_exits_0(env: dict[str, str], settings: Settings,
                                                 raw_redis: Any, planted: dict[str, Any]
                                                 ) -> None:
    holder = RedisLock(raw_redis, settings.keyspace.cleanup_lock, 20_000)
    assert await holder.acquire()
    try:
        result = await asyncio.to_thread(run_cli, ["cleanup-exports"], env)
    finally:
        await holder.release()
    assert result.returncode == 0, result.stderr
    assert "another export cleanup is running" in result.stdout
    assert len(listing(settings.export_path)) == len(planted["survivors"]) + 4


def test_progress_bar_on_a_terminal(env: dict[str, str], planted: dict[str, Any]) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen([BULLPEN, "cleanup-exports", "--dry-run"], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    stdout, _ = proc.communicate(timeout=30)
    terminal = _drain(leader)
    assert proc.returncode == 0, terminal
    assert "Scanning exports" in terminal
    assert "Would delete 2" in stdout


def _drain(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[Proc]:
    proc = start_worker(env)
    yield proc
    proc.kill()


async def _result(client: QueueClient, job_id: str) -> Any:
    record = await finished(client, job_id)
    assert record.state == "completed", record.failed_reason
    return record.return_value


async def test_task_deletes_exactly_the_expired(worker: Proc, client: QueueClient,
                                                settings: Settings, planted: dict[str, Any]
                                                ) -> None:
    job_id = await client.add("exports.cleanup", {}, JobOptions())
    report = await _result(client, job_id)
    assert sorted(report["expired"]) == planted["expired"]
    assert listing(settings.export_path) == planted["survivors"]
    assert planted["outside"].read_text() == "keep"
    worker.wait_for(STARTING)
    worker.wait_for("[cleanup] [exports] Deleted 2 expired export files")


async def test_command_and_task_started_together(env: dict[str, str], worker: Proc,
                                                 client: QueueClient, raw_redis: Any,
                                                 settings: Settings) -> None:
    # Enough files that the command's walk outlasts the task's start by far.
    await asyncio.to_thread(settings.export_path.mkdir, exist_ok=True)
    await asyncio.to_thread(plant_data_files, settings.export_path, 20_000, 30)
    command = Proc(["cleanup-exports", "--json"], env)
    lock_key = settings.keyspace.cleanup_lock
    deadline = time.monotonic() + 20
    while not await raw_redis.exists(lock_key):
        assert time.monotonic() < deadline, command.output
        await asyncio.sleep(0.005)
    job_id = await client.add("exports.cleanup", {}, JobOptions())
    task_report = await _result(client, job_id)
    assert await asyncio.to_thread(command.wait) == 0, command.output
    assert "another export cleanup is running" in task_report["skipped"]
    command_report = json.loads(command.output[command.output.index("{"):])
    assert command_report["deleted"] == 20_000 and command_report["error_count"] == 0
    # Only the directory's identity marker is left (once the worker's heartbeat wrote it).
    assert set(await asyncio.to_thread(os.listdir, settings.export_path)) <= {identity.MARKER}
