"""Redis Cluster: tagged queues on their own masters, everything bullpen does working there,
a slot migration followed while jobs run, and an untagged layout refused before any work.

Three masters made by `redis-cli --cluster create` on loopback ports
(tests/helpers/topologies.py). Runs are counted in a ledger on the shared test Redis.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import pytest

from bullpen import JobFailed, SyncClient
from tests.helpers.ledger import (
    Outcome,
    Producer,
    all_done,
    assert_clean_log,
    check_outcomes,
    ledger_runs,
    present,
    run_counts,
)
from tests.helpers.processes import Fleet, eventually, run_cli
from tests.helpers.topologies import NODE_TIMEOUT_MS, Cluster, migrate_slot, redis_cluster
from tests.helpers.web import running_web

pytestmark = pytest.mark.topology

# {a} hashes to slot 15495 and {b} to 3300: the first and the last of three masters' ranges.
FAST, SLOW = "{a}", "{b}"
LIMIT_MAX, LIMIT_MS = 10, 500
WINDOW_SLACK_MS = 20
TICK_MS = 400
# A master is failed after the node timeout (agreed by the others), its replica elected within
# about a second more; clients reconnect within their outage retry delay.
FAILOVER_BOUND_MS = 2 * NODE_TIMEOUT_MS + 1000 + 2500
FAILOVER_LOCK_MS = 8000


def test_queues_jobs_schedules_and_tools_on_a_cluster(topo_env: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      report: dict[str, Any]) -> None:
    schedule = {"name": "topo-tick", "task_name": "topo.record", "every_ms": TICK_MS,
                "queue": SLOW}
    settings = {"WORKER_DEFAULT_QUEUE": FAST, "WORKER_QUEUES": f"{FAST},{SLOW}",
                "WORKER_LIMITER_MAX": str(LIMIT_MAX), "WORKER_LIMITER_DURATION": str(LIMIT_MS),
                "TOPOLOGY_SCHEDULES": json.dumps([schedule]),
                # bullpen's own cleanup on a queue whose slot is not the default queue's.
                "TOPOLOGY_TASK_QUEUES": json.dumps({"exports.cleanup": SLOW})}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    with redis_cluster() as cluster:
        env = {**topo_env, **settings, "WORKER_REDIS_URL": cluster.url}
        assert cluster.owner_of(f"bull:{FAST}:meta") != cluster.owner_of(f"bull:{SLOW}:meta")
        fleet = Fleet(env, 1)
        client = SyncClient(redis_url=cluster.url)
        try:
            fleet.ready()
            enqueued_ms = time.time() * 1000
            fast = [client.enqueue("topo.record", {}, queue=FAST).id for _ in range(25)]
            slow = [client.enqueue("topo.record", {}, queue=SLOW).id for _ in range(5)]
            delayed = [client.enqueue("topo.record", {}, queue=SLOW, delay_ms=300).id
                       for _ in range(3)]
            added = run_cli(["enqueue", "topo.record", "--data", "{}", "--queue", SLOW], env)
            assert added.returncode == 0, added.stderr
            for job_id in fast:
                assert client.job(job_id, queue=FAST).wait(timeout=30) == {"ran": job_id}
            for job_id in slow + delayed:
                assert client.job(job_id, queue=SLOW).wait(timeout=30) == {"ran": job_id}
            key = env["TOPOLOGY_LEDGER_KEY"]
            eventually(lambda: len(_ticks(ledger_runs(key))) >= 2, timeout=10)
            _cancel_through_the_cluster(client)
            # The worker's app routes it to SLOW (TOPOLOGY_TASK_QUEUES); this process may have
            # imported the app before the variable was set.
            cleanup = client.enqueue("exports.cleanup", {}, queue=SLOW)
            assert "deleted" in cleanup.wait(timeout=30)  # its lock and totals: default's slot
            _check_tools(env, cluster, fast[0])
        finally:
            client.close()
            codes = fleet.stop()
        runs = ledger_runs(key)
        _check_runs(runs, fast, slow + delayed, delayed, enqueued_ms)
        _check_keys_stay_on_their_masters(cluster)
        assert codes == [0]
        assert_clean_log(fleet.output())
        report.update(masters=3, fast_queue_master=cluster.owner_of(f"bull:{FAST}:meta"),
                      slow_queue_master=cluster.owner_of(f"bull:{SLOW}:meta"))


def _cancel_through_the_cluster(client: SyncClient) -> None:
    """The request is stored in the queue's slot and published; the worker's listener, on the
    queue's master, hears it and the job fails as cancelled."""
    job = client.enqueue("topo.until_cancelled", {"max_s": 20}, queue=SLOW)
    eventually(lambda: job.status() == "active", timeout=10)
    assert job.cancel("enough")
    with pytest.raises(JobFailed) as caught:
        job.wait(timeout=10)
    assert "cancelled" in caught.value.reason


def _ticks(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [run for run in runs if run.get("scheduler") == "topo-tick"]


def _check_runs(runs: list[dict[str, Any]], fast: list[str], slow: list[str],
                delayed: list[str], enqueued_ms: float) -> None:
    by_queue = {FAST: [run for run in runs if run["queue"] == FAST],
                SLOW: [run for run in runs if run["queue"] == SLOW and not run["scheduler"]]}
    for queue, ids in ((FAST, fast), (SLOW, slow)):
        counts = run_counts(by_queue[queue])
        assert all(counts[job_id] == 1 for job_id in ids), (queue, counts)
    for job_id in delayed:
        started = next(run["at_ms"] for run in by_queue[SLOW] if run["job_id"] == job_id)
        assert started >= enqueued_ms + 300, job_id
    # The limiter lets LIMIT_MAX jobs start per LIMIT_MS window: 25 jobs need three windows.
    # A handler starts a few ms after the fetch the limiter counted (WINDOW_SLACK_MS each);
    # without the limiter all 25 would start within a few tens of ms.
    starts = sorted(run["at_ms"] for run in by_queue[FAST])
    windows = math.ceil(len(fast) / LIMIT_MAX) - 1
    assert starts[-1] - starts[0] >= windows * (LIMIT_MS - WINDOW_SLACK_MS)
    tick_ids = [run["job_id"] for run in _ticks(runs)]
    assert len(tick_ids) == len(set(tick_ids)), tick_ids


def _check_tools(env: dict[str, str], cluster: Cluster, job_id: str) -> None:
    """CLI (schedules: reconciled; jobs), doctor and the dashboard answer through the cluster."""
    schedules = run_cli(["schedules", "--json", "--queue", SLOW], env)
    assert schedules.returncode == 0, schedules.stderr
    assert '"registered"' in schedules.stdout and "topo-tick" in schedules.stdout
    jobs = run_cli(["jobs", "--state", "completed", "--queue", FAST, "--limit", "50"], env)
    assert jobs.returncode == 0 and job_id in jobs.stdout, jobs.stderr
    doctor = run_cli(["doctor"], env)
    for line in ("✓ redis:", f"✓ workers ({FAST}): 1 alive", f"✓ workers ({SLOW}): 1 alive",
                 f"✓ schedules ({SLOW}): 2 declared, all registered"):  # topo-tick, cleanup
        assert line in doctor.stdout, doctor.stdout
    untagged = run_cli(["doctor"], {**env, "WORKER_QUEUES": f"{FAST},plain"})
    assert untagged.returncode == 1 and "Traceback" not in untagged.stderr, untagged.stderr
    assert "✗ queue (plain): WORKER_REDIS_URL is a Redis Cluster" in untagged.stdout
    with running_web(env) as (_proc, base):
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        shown = httpx.get(f"{base}/api/jobs/{job_id}", timeout=10,
                          headers={"Authorization": f"Bearer {env['WEB_AUTH_TOKEN']}"})
        assert shown.status_code == 200 and shown.json()["state"] == "completed", shown.text
    assert cluster.owner_of(f"bull:{FAST}:{job_id}") == cluster.owner_of(f"bull:{FAST}:meta")


def _check_keys_stay_on_their_masters(cluster: Cluster) -> None:
    """Every key of a queue (bullpen's own included) is on the master owning its tag."""
    for queue in (FAST, SLOW):
        owner = cluster.owner_of(f"bull:{queue}:meta")
        for server in cluster.servers:
            keys = server.client.keys(f"bull:{queue}:*")
            assert bool(keys) == (server.port == owner), (queue, server.port, keys[:5])
        owned = cluster.server_on(owner).client.keys(f"bull:{queue}:bullpen:*")
        assert owned, f"no bullpen keys for {queue}"


def test_a_slot_migration_is_followed_while_jobs_run(topo_env: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     report: dict[str, Any]) -> None:
    queue = "{m}"
    monkeypatch.setenv("WORKER_DEFAULT_QUEUE", queue)
    with redis_cluster() as cluster:
        env = {**topo_env, "WORKER_DEFAULT_QUEUE": queue, "WORKER_REDIS_URL": cluster.url}
        slot = cluster.slot_of(queue)
        source = cluster.owner_of_slot(slot)
        target = next(server.port for server in cluster.servers if server.port != source)
        fleet = Fleet(env, 2)
        client = SyncClient(redis_url=cluster.url)
        producer = Producer(client, "m", threads=1, pause_s=0.004)
        try:
            fleet.ready()
            producer.start()
            key = env["TOPOLOGY_LEDGER_KEY"]
            eventually(lambda: len(ledger_runs(key)) >= 50, timeout=20)
            started_ms = time.time() * 1000
            moved_keys = migrate_slot(cluster, slot, target, batch=4, pause_s=0.05)
            migrated_ms = time.time() * 1000
            eventually(lambda: len(producer.acked_after(migrated_ms)) >= 100, timeout=30)
            producer.stop()
            acked = list(producer.acked)
            master = cluster.server_on(target).client
            eventually(lambda: all("finishedOn" in job for job in present(
                master, "bull", queue, acked).values()), timeout=40, interval=0.2)
        finally:
            producer.stop()
            client.close()
            codes = fleet.stop()
        found = present(cluster.server_on(target).client, "bull", queue, acked)
        counts = run_counts(ledger_runs(key))
        assert sorted(found) == sorted(acked), set(acked) - set(found)
        assert all(counts[job_id] == 1 for job_id in acked), {
            job_id: counts[job_id] for job_id in acked if counts[job_id] != 1}
        assert cluster.server_on(source).client.keys(f"bull:{queue}:*") == []
        assert codes == [0, 0]
        assert_clean_log(fleet.output())
        report.update(keys_moved=moved_keys, migration_ms=round(migrated_ms - started_ms),
                      jobs_acknowledged=len(acked),
                      enqueue_failures_during_migration=len(producer.failures))


def test_a_master_failover_is_followed(topo_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                       report: dict[str, Any]) -> None:
    """kill -9 the master of the queue's slot: its replica takes over and the workers, the
    producer and the job waiter follow it without a restart."""
    queue = "{f}"
    monkeypatch.setenv("WORKER_DEFAULT_QUEUE", queue)
    with redis_cluster(replicas=1) as cluster:
        # The only seed node is the master about to die: the others are known from its map.
        seed = f"redis+cluster://127.0.0.1:{cluster.owner_of_slot(cluster.slot_of(queue))}"
        env = {**topo_env, "WORKER_DEFAULT_QUEUE": queue, "WORKER_REDIS_URL": seed,
               # A cluster failover takes about two node timeouts (4 s): a lock well above it.
               # (test_sentinel.py runs a failover longer than the lock.)
               "WORKER_LOCK_DURATION_MS": str(FAILOVER_LOCK_MS),
               "WORKER_STALLED_INTERVAL_MS": str(FAILOVER_LOCK_MS),
               "WORKER_SHUTDOWN_TIMEOUT_S": str(FAILOVER_LOCK_MS / 1000)}
        outcome = _jobs_through_a_failover(cluster, env, queue)
        lost, twice = check_outcomes(outcome, queue, report, FAILOVER_BOUND_MS)
    assert outcome.codes == [0, 0]
    assert_clean_log(outcome.output, lost, twice)
    report.update(node_timeout_ms=NODE_TIMEOUT_MS, masters=3, replicas_each=1, workers=2,
                  lock_ms=FAILOVER_LOCK_MS)


def _jobs_through_a_failover(cluster: Cluster, env: dict[str, str], queue: str) -> Outcome:
    slot = cluster.slot_of(queue)
    fleet = Fleet(env, 2)
    client = SyncClient(redis_url=env["WORKER_REDIS_URL"])
    producer = Producer(client, "f", threads=1, pause_s=0.004)
    key = env["TOPOLOGY_LEDGER_KEY"]
    try:
        fleet.ready()
        producer.start()
        eventually(lambda: len(ledger_runs(key)) >= 50, timeout=20)
        old = cluster.server_on(cluster.owner_of_slot(slot))
        assert old.process is not None
        old.process.kill()
        old.process.wait(5)
        killed_ms = time.time() * 1000
        eventually(lambda: cluster.owner_of_slot(slot) != old.port, timeout=30, interval=0.1)
        master = cluster.server_on(cluster.owner_of_slot(slot)).client
        eventually(lambda: len(producer.acked_after(killed_ms)) >= 200, timeout=30)
        producer.stop()
        acked = list(producer.acked)
        eventually(lambda: all_done(master, queue, acked), timeout=40, interval=0.2)
        last = acked[-1]
        assert client.job(last, queue=queue).wait(timeout=10) == {"ran": last}
    finally:
        producer.stop()
        client.close()
        codes = fleet.stop()
    return Outcome(master, producer, killed_ms, ledger_runs(key), codes, fleet.output())


@pytest.mark.parametrize(("prefix", "queues", "named"), [
    ("bull", "", "'default'"),
    ("bull", "{a},plain", "'plain'"),
])
def test_an_untagged_layout_is_refused_before_any_work(
        offline_env: dict[str, str], prefix: str, queues: str, named: str) -> None:
    """No server is needed: the layout is refused before connecting."""
    env = {**offline_env, "WORKER_REDIS_URL": "redis+cluster://127.0.0.1:1",
           "WORKER_PREFIX": prefix, "WORKER_QUEUES": queues, "WORKER_DEFAULT_QUEUE": "default"}
    refused = run_cli(["worker"], env)
    assert refused.returncode == 2, refused.stderr
    assert f"the keys of queue {named}" in refused.stderr
    assert "WORKER_PREFIX={bull}" in refused.stderr and "carry no hash tag" in refused.stderr
    web = run_cli(["web"], {**env, "WEB_AUTH_TOKEN": "Tq8Lm3Xr7Wc2Np9Vb4Hk6Jd1Fs5Gz0Ay"})
    assert web.returncode == 2 and named in web.stderr, web.stderr  # every queue it shows
