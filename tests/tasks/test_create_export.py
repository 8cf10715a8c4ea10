"""Task `exports.create` through a real worker process, and the job-history exporter's paging."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bullpen.adapter import JobOptions, QueueClient
from bullpen.errors import ExporterError
from bullpen.exports import identity
from bullpen.exports.exporters import ExportSource, exporters, get_exporter, parse_params
from bullpen.exports.service import ExportService
from bullpen.settings import Settings
from tests.helpers.exports import finished
from tests.helpers.processes import Proc, run_cli, start_worker


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[Proc]:
    proc = start_worker(env)
    yield proc
    proc.kill()


def enqueue(env: dict[str, str], task: str, data: dict[str, Any]) -> str:
    result = run_cli(["enqueue", task, "--data", json.dumps(data)], env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def test_round_trip_through_a_worker(env: dict[str, str], worker: Proc,
                                           client: QueueClient, settings: Settings) -> None:
    health_ids = [enqueue(env, "health.check", {}) for _ in range(3)]
    for job_id in health_ids:
        assert (await finished(client, job_id)).state == "completed"
    job_id = enqueue(env, "exports.create", {
        "exporter": "jobs.history", "format": "csv", "label": "audit",
        "params": {"states": ["completed"], "page_size": 2},
    })
    record = await finished(client, job_id)
    assert record.state == "completed", record.failed_reason
    result = record.return_value
    assert set(result) >= {"export_id", "filename", "size", "token", "expires_at",
                           "download_path"}
    assert result["download_path"] == f"/exports/{result['token']}"
    assert result["filename"] == "job-history.csv"
    service = ExportService(settings)
    export = service.verify(result["token"])
    assert export.id == result["export_id"] and export.size_bytes == result["size"]
    assert export.label == "audit"
    rows = list(csv.DictReader(io.StringIO(service.read(export.id).decode())))
    assert sorted(row["id"] for row in rows) == sorted(health_ids)
    assert {row["name"] for row in rows} == {"health.check"}
    assert all(row["state"] == "completed" and row["finished_at"] for row in rows)
    assert "data" not in rows[0]  # job data may hold personal data: never exported


@pytest.mark.parametrize(("data", "reason"), [
    ({"exporter": "nope"}, "unknown exporter 'nope' (known: jobs.history)"),
    ({"exporter": "jobs.history", "params": {"states": ["bogus"]}}, "unknown states ['bogus']"),
    ({"exporter": "jobs.history", "params": {"limit": 0}}, "limit: Input should be greater"),
    ({"exporter": "jobs.history", "params": {"colour": "red"}}, "colour: Extra inputs"),
    ({"exporter": "jobs.history", "format": "xlsx"}, "unknown export format 'xlsx'"),
    ({"exporter": "jobs.history", "speed": 3}, "unknown keys ['speed']"),
])
async def test_bad_input_fails_once_with_a_clear_reason(
        env: dict[str, str], worker: Proc, client: QueueClient, settings: Settings,
        data: dict[str, Any], reason: str) -> None:
    job_id = enqueue(env, "exports.create", data)
    record = await finished(client, job_id)
    assert record.state == "failed"
    assert reason in (record.failed_reason or "")
    assert record.attempts_made == 1  # not retried: retrying cannot fix the input
    # Nothing but the directory's identity marker (the worker's heartbeat writes it).
    assert not settings.export_path.exists() or \
        {path.name for path in settings.export_path.iterdir()} <= {identity.MARKER}


async def test_jsonl_with_a_limit(env: dict[str, str], worker: Proc, client: QueueClient,
                                  settings: Settings) -> None:
    for _ in range(4):
        await finished(client, enqueue(env, "health.check", {}))
    job_id = enqueue(env, "exports.create", {
        "exporter": "jobs.history", "format": "jsonl", "filename": "last-two",
        "params": {"limit": 2, "page_size": 1},
    })
    result = (await finished(client, job_id)).return_value
    assert result["filename"] == "last-two.jsonl"
    content = ExportService(settings).read(result["export_id"]).decode()
    assert [json.loads(line)["name"] for line in content.splitlines()] == ["health.check"] * 2


async def test_history_pages_without_loading_everything(client: QueueClient,
                                                        settings: Settings) -> None:
    for index in range(7):
        await client.add("health.check", {"n": index}, JobOptions())
    exporter = get_exporter("jobs.history")
    params = parse_params(exporter, {"states": ["waiting"], "page_size": 3})
    pages = [page async for page in exporter.pages(ExportSource(settings, client), params)]
    assert [len(page) for page in pages] == [3, 3, 1]
    limited = parse_params(exporter, {"states": ["waiting"], "page_size": 3, "limit": 5})
    pages = [page async for page in exporter.pages(ExportSource(settings, client), limited)]
    assert [len(page) for page in pages] == [3, 2]
    assert set(pages[0][0]) == set(exporter.columns)


def test_registry_lists_the_history_exporter() -> None:
    assert "jobs.history" in exporters
    with pytest.raises(ExporterError, match="params must be an object"):
        parse_params(get_exporter("jobs.history"), ["states"])
