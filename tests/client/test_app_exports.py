"""`client.exports`: create from the app, sign links, serve tokens, run the app's exporters."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import time_machine

from bullpen import Client, SyncClient
from bullpen.errors import ExporterError
from tests.helpers.processes import running_worker


async def _rows(count: int) -> AsyncIterator[dict[str, Any]]:
    for i in range(count):
        yield {"i": i, "name": f"row {i}"}


def _body(client: SyncClient | Client, token: str, **range_args: Any) -> tuple[int, bytes]:
    answer = client.exports.serve(token, **range_args)
    return answer.status, b"".join(answer.chunks())


async def test_create_sign_and_serve(client_app_env: dict[str, str]) -> None:
    async with Client() as client:
        export = await client.exports.create([{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}],
                                             filename="people.csv", owner="user-7")
        assert (export.filename, export.format, export.owner) == ("people.csv", "csv", "user-7")
        assert export.size_bytes == len(b"id,name\r\n1,Ada\r\n2,Bo\r\n")
        url = client.exports.download_url(export.id, base_url="https://app.example/admin/jobs/")
        prefix = "https://app.example/admin/jobs/exports/"
        assert url.startswith(prefix)
        token = url.removeprefix(prefix)
        assert _body(client, token) == (200, b"id,name\r\n1,Ada\r\n2,Bo\r\n")
        answer = client.exports.serve(token)
        answer.close()
        assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert 'filename="people.csv"' in answer.headers["Content-Disposition"]
        assert _body(client, token, range_header="bytes=0-1") == (206, b"id")
        assert client.exports.serve("not-a-token").status == 404
        streamed = await client.exports.create(_rows(1200), filename="rows.jsonl")
        lines = client.exports.service.read(streamed.id).decode().splitlines()
        assert len(lines) == 1200 and lines[-1] == '{"i": 1199, "name": "row 1199"}'
        raw = await client.exports.create(b"\x00\x01", filename="blob.bin")
        assert raw.content_type == "application/octet-stream" and raw.size_bytes == 2
        short = client.exports.token(export, expires_minutes=1)
        with time_machine.travel(time.time() + 61):
            assert client.exports.serve(str(short)).status == 410
        client.exports.service.delete(export.id)
        assert client.exports.serve(token).status == 410


def test_the_sync_client_exports_too(client_app_env: dict[str, str]) -> None:
    with SyncClient() as client:
        export = client.exports.create(iter([{"a": "=1+1"}]), filename="x.csv")
        url = client.exports.download_url(export, base_url="/files")
        assert url.startswith("/files/exports/")
        status, body = _body(client, url.rsplit("/", 1)[1])
        assert (status, body) == (200, b"a\r\n'=1+1\r\n")  # formula cells are defused


async def test_an_app_exporter_runs_in_the_worker(client_app_env: dict[str, str]) -> None:
    async with Client() as client:
        with pytest.raises(ExporterError, match="min_total"):
            await client.exports.request("client.orders", {"min_total": "lots"})
        with pytest.raises(ExporterError, match=r"unknown exporter 'client\.ordrs'"):
            await client.exports.request("client.ordrs")
        with running_worker(client_app_env) as worker:
            job = await client.exports.request("client.orders", {"min_total": 30}, owner="u1")
            result = await job.wait(timeout=20)
            numbers = await (await client.exports.request("client.numbers", {"count": 4},
                                                          format="jsonl")).wait(timeout=20)
        assert "Traceback" not in worker.output
        assert result["filename"] == "orders.csv" and result["rows"] == 5
        status, body = _body(client, result["token"])
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert status == 200 and [row["id"] for row in rows] == ["3", "4", "5", "6", "7"]
        # The sync generator was read in a thread, never on the worker's event loop.
        assert {row["on_loop_thread"] for row in rows} == {"False"}
        assert client.exports.service.get(result["export_id"]).owner == "u1"
        assert _body(client, numbers["token"])[1].decode().splitlines() == [
            '{"n": 0}', '{"n": 1}', '{"n": 2}', '{"n": 3}']
