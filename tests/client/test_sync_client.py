"""SyncClient from plain threads: the same results, one background loop, bounded connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bullpen import JobFailed, SyncClient
from bullpen.errors import ClientError
from tests.helpers.processes import running_worker


def _client_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name == "bullpen-client"]


def test_many_threads_share_one_sync_client(app_env: dict[str, str]) -> None:
    with running_worker(app_env), SyncClient(poll_interval_s=0.5) as client:
        def round_trip(index: int) -> object:
            return client.enqueue("test.record_sync", {"i": index}).wait(timeout=20)

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(round_trip, range(16)))
        assert results == [{"thread": True, "data": {"i": i}} for i in range(16)]
        assert len(_client_threads()) == 1
        failed = client.enqueue("test.give_up")
        with pytest.raises(JobFailed, match="will not retry"):
            failed.wait(timeout=15)
        assert failed.status() == "failed"
        info = client.get_job(failed.id)
        assert info is not None and info.failed_reason == "bad input: will not retry"
        [first, second] = client.enqueue_many([("test.record", {"a": 1}), ("test.record", {})])
        assert first.wait(timeout=15) == {"echo": {"a": 1}} and second.wait(15) == {"echo": {}}
    assert _client_threads() == []


def test_a_closed_sync_client_refuses(app_env: dict[str, str]) -> None:
    client = SyncClient().open()
    client.close()
    client.close()
    with pytest.raises(ClientError, match="closed"):
        client.enqueue("test.record")
    with SyncClient() as other, pytest.raises(TimeoutError):
        other.enqueue("test.record", delay_ms=60_000).wait(timeout=0.2)
