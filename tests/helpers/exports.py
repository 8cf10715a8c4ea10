"""Helpers for export tests: exports and files of a chosen age in the export directory."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from bullpen.adapter import JobRecord, QueueClient
from bullpen.exports import naming
from bullpen.exports.service import ExportService


def make_export(service: ExportService, age: timedelta, content: bytes = b"payload") -> str:
    """A real export (data and metadata), created `age` ago."""
    with time_machine.travel(datetime.now(UTC) - age, tick=False):
        export, _ = service.create("e.txt", content)
    return export.id


def make_export_id(hours: float) -> str:
    """An export id as if created `hours` ago (no files)."""
    return naming.new_export_id((datetime.now(UTC) - timedelta(hours=hours)).timestamp())


def plant_data_files(directory: Path, count: int, hours: float) -> None:
    """`count` bare data files `hours` old: quick to make, for runs that must take a while."""
    for _ in range(count):
        fd = os.open(directory / naming.data_name(make_export_id(hours)),
                     os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


def age_file(path: Path, age: timedelta) -> None:
    stamp = (datetime.now(UTC) - age).timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def pair(export_id: str) -> set[str]:
    return {naming.data_name(export_id), naming.meta_name(export_id)}


async def finished(client: QueueClient, job_id: str, timeout_s: float = 20) -> JobRecord:
    """The job once it completed or failed, with its result or reason readable."""
    for _ in range(int(timeout_s / 0.05)):
        record = await client.get_job(job_id)
        # get_job reads the hash before the state, so "completed" can briefly come with
        # the result still missing; wait until both agree.
        if record is not None and (
                (record.state == "completed" and record.return_value is not None)
                or (record.state == "failed" and record.failed_reason)):
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")


def listing(directory: Path) -> set[str]:
    return set(os.listdir(directory))


@contextmanager
def immutable(path: Path) -> Iterator[Path]:
    """`path` made undeletable (chattr +i), even for root; skips the test where unsupported."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=False)
