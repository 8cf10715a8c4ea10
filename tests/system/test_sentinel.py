"""Redis Sentinel: workers, producers, the CLI and the web follow a failover by themselves.

One master, two replicas, three sentinels on loopback ports (tests/helpers/topologies.py);
the master is killed with SIGKILL while three `bullpen worker` processes run a stream of jobs.
Runs are counted in a ledger on the shared test Redis, which no failover touches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from bullpen import SyncClient
from bullpen.errors import ReplicationError
from tests.helpers.ledger import (
    Outcome,
    Producer,
    all_done,
    assert_clean_log,
    check_outcomes,
    ledger_runs,
    present,
)
from tests.helpers.processes import Fleet, eventually, run_cli
from tests.helpers.topologies import MASTER_NAME, SentinelGroup, sentinel_group
from tests.helpers.web import running_web
from tests.system.conftest import LOCK_MS

pytestmark = pytest.mark.topology

# Sentinel notices the master is down after down-after-milliseconds, then elects a leader and
# promotes a replica; workers reconnect within their outage retry delay (0.2 s, doubling).
MARGIN_MS = 2500
FAILOVER_BOUND_MS = 1000 + 5000 + MARGIN_MS  # down-after + failover-timeout + reconnect
# A client hears an announcement from a sentinel as the test does, within a loop turn or two.
SWITCH_MARGIN_MS = 250


def _kill_master(group: SentinelGroup) -> tuple[int, float]:
    port = group.master_port()
    server = group.server_on(port)
    assert server.process is not None
    server.process.kill()
    server.process.wait(5)
    return port, time.time() * 1000


def _new_master(group: SentinelGroup, old_port: int) -> redis.Redis:
    eventually(lambda: group.master_port() != old_port, timeout=30, interval=0.1)
    return group.server_on(group.master_port()).client


def _jobs_through(group: SentinelGroup, env: dict[str, str], queue: str,
                  failover: Callable[[SentinelGroup], tuple[int, float]]) -> Outcome:
    """Three workers and a producer; `failover` (old master's port, when) after 50 runs."""
    fleet = Fleet(env, 3)
    client = SyncClient(redis_url=group.url)
    producer = Producer(client, "j", threads=1, pause_s=0.004)
    try:
        fleet.ready()
        producer.start()
        eventually(lambda: len(ledger_runs(env["TOPOLOGY_LEDGER_KEY"])) >= 50, timeout=20)
        first = next(iter(producer.acked))
        assert client.job(first).wait(timeout=10) == {"ran": first}  # the waiter reads now
        old_port, cut_ms = failover(group)
        master = _new_master(group, old_port)
        eventually(lambda: len(producer.acked_after(cut_ms)) >= 200, timeout=30)
        producer.stop()
        acked = list(producer.acked)
        eventually(lambda: all_done(master, queue, acked), timeout=40, interval=0.2)
        # The client's waiter read the events stream on the old master: it follows too.
        assert client.job(acked[-1]).wait(timeout=10) == {"ran": acked[-1]}
        _check_tools(env, queue)
    finally:
        producer.stop()
        client.close()
        codes = fleet.stop()
    return Outcome(master, producer, cut_ms, ledger_runs(env["TOPOLOGY_LEDGER_KEY"]), codes,
                    fleet.output())


# Both sides of the lock: a failover (about 2.5 s here) shorter than it, and longer, when
# every running job's lock expires before a master takes the renewal.
@pytest.mark.parametrize("lock_ms", [LOCK_MS, 1500])
def test_workers_follow_a_failover_without_restart(topo_env: dict[str, str], queue_name: str,
                                                   lock_ms: int, report: dict[str, Any]) -> None:
    timings = {"WORKER_LOCK_DURATION_MS": str(lock_ms),
               "WORKER_STALLED_INTERVAL_MS": str(lock_ms),
               "WORKER_SHUTDOWN_TIMEOUT_S": str(lock_ms / 1000)}
    with sentinel_group() as group:
        env = {**topo_env, **timings, "WORKER_REDIS_URL": group.url}
        outcome = _jobs_through(group, env, queue_name, _kill_master)
        lost, twice = check_outcomes(outcome, queue_name, report, FAILOVER_BOUND_MS)
    assert outcome.codes == [0, 0, 0]
    assert_clean_log(outcome.output, lost, twice)
    report.update(workers=3, down_after_ms=group.down_after_ms,
                  failover_timeout_ms=group.failover_timeout_ms, lock_ms=lock_ms)


def test_workers_follow_a_demoted_master(topo_env: dict[str, str], queue_name: str,
                                         report: dict[str, Any]) -> None:
    """SENTINEL FAILOVER: the old master lives on as a replica, answering writes with READONLY
    and blocked commands with UNBLOCKED; every client moves to the new master by itself."""
    with sentinel_group() as group:
        switched = _heard_switch(group)
        outcome = _jobs_through(group, {**topo_env, "WORKER_REDIS_URL": group.url}, queue_name,
                                _coordinated_failover)
        lost, twice = check_outcomes(outcome, queue_name, report, FAILOVER_BOUND_MS)
    # Sentinel announces the new master seconds before it demotes the old one; bullpen's
    # clients hear it too and stop writing there: only writes acknowledged before the
    # announcement (and the next command's send) are lost with the old master's data.
    late = [job_id for job_id in lost
            if outcome.producer.acked[job_id] > min(switched) + SWITCH_MARGIN_MS]
    assert not late, (len(late), len(lost))
    report.update(announced_to_demotion_ms=round(outcome.cut_ms - min(switched)))
    assert outcome.codes == [0, 0, 0]
    assert_clean_log(outcome.output, lost, twice)


def _heard_switch(group: SentinelGroup) -> list[float]:
    """When (epoch ms) a sentinel first announces the new master (the leader's
    +promoted-slave, or any +switch-master), filled in by a thread per sentinel."""
    heard: list[float] = []

    def listen(index: int) -> None:
        pubsub = group.sentinel(index).pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("+promoted-slave", "+switch-master")
        for _message in pubsub.listen():  # type: ignore[no-untyped-call]
            heard.append(time.time() * 1000)
            pubsub.close()
            return

    for index in range(len(group.sentinel_ports)):
        threading.Thread(target=listen, args=(index,), daemon=True).start()
    return heard


def _coordinated_failover(group: SentinelGroup) -> tuple[int, float]:
    """Returns once the old master is a replica: nothing is acknowledged there afterwards.
    A forced failover does not wait for the promoted replica to catch up, so writes the old
    master took until then may be lost, as after a kill."""
    port = group.master_port()
    sentinel = group.sentinel()
    try:
        sentinel.execute_command("SENTINEL FAILOVER", MASTER_NAME)  # type: ignore[no-untyped-call]
    finally:
        sentinel.close()
    old = group.server_on(port).client
    eventually(lambda: old.info("replication")["role"] == "slave", timeout=30, interval=0.02)
    return port, time.time() * 1000


def _check_tools(env: dict[str, str], queue: str) -> None:
    """After the failover the CLI and the web answer through the same sentinel URL."""
    listed = run_cli(["jobs", "--state", "completed", "--limit", "1", "--queue", queue], env)
    assert listed.returncode == 0, listed.stderr
    added = run_cli(["enqueue", "topo.record", "--data", "{}"], env)
    assert added.returncode == 0, added.stderr
    with running_web(env) as (_proc, base):
        import httpx  # noqa: PLC0415 - only this check speaks HTTP

        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text


@pytest.mark.parametrize("wait_replicas", [0, 1])
def test_durable_enqueue_keeps_acknowledged_jobs(topo_env: dict[str, str], queue_name: str,
                                                 wait_replicas: int, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 report: dict[str, Any]) -> None:
    """Jobs acknowledged just before the master dies: some lost without WAIT, none with."""
    monkeypatch.setenv("JOB_ENQUEUE_WAIT_REPLICAS", str(wait_replicas))
    monkeypatch.setenv("JOB_ENQUEUE_WAIT_TIMEOUT_MS", "1000")
    with sentinel_group() as group:
        client = SyncClient(redis_url=group.url)
        try:
            per_enqueue_ms = _enqueue_cost(client)
            producer = Producer(client, "d", threads=4).start()
            eventually(lambda: len(producer.acked) >= 2000, timeout=20)
            old_port, killed_ms = _kill_master(group)
            master = _new_master(group, old_port)
            eventually(lambda: len(producer.acked_after(killed_ms)) >= 10, timeout=30)
        finally:
            producer.stop()
            client.close()
        before_kill = [job_id for job_id, at in producer.acked.items() if at < killed_ms]
        lost = set(before_kill) - set(present(master, "bull", queue_name, before_kill))
        if wait_replicas:
            assert not lost, sorted(lost)
            _refused_when_replicas_are_missing(group)
        report.update(wait_replicas=wait_replicas, acknowledged_before_kill=len(before_kill),
                      acknowledged_then_lost=len(lost), per_enqueue_ms=per_enqueue_ms,
                      producer_threads=4)


def _enqueue_cost(client: SyncClient, count: int = 300) -> float:
    started = time.perf_counter()
    for index in range(count):
        client.enqueue("topo.record", {}, job_id=f"cost-{index}")
    return round((time.perf_counter() - started) * 1000 / count, 3)


def _refused_when_replicas_are_missing(group: SentinelGroup) -> None:
    """Asking more replicas than answer: the caller hears it, and the job exists anyway."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOB_ENQUEUE_WAIT_REPLICAS", "5")
        patch.setenv("JOB_ENQUEUE_WAIT_TIMEOUT_MS", "100")
        client = SyncClient(redis_url=group.url)
        try:
            with pytest.raises(ReplicationError) as caught:
                client.enqueue("topo.record", {}, job_id="short-of-replicas")
            assert "was added on the Redis master" in str(caught.value)
            assert client.get_job("short-of-replicas") is not None
        finally:
            client.close()
