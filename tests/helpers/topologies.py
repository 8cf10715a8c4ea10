"""Real Redis topologies on loopback ports for one test: Sentinel (a master, replicas,
sentinels) and Cluster (masters made by `redis-cli --cluster create`), killed at teardown."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.helpers.redis_server import PrivateRedis, free_port, server_binary

MASTER_NAME = "mymaster"
NODE_TIMEOUT_MS = 2000
# Any server may become the master: each starts a diskless sync at once.
_REPLICATION = ("--repl-diskless-sync-delay", "0")


def call(client: redis.Redis, *command: Any) -> Any:
    """A raw command (redis-py's typed wrappers return unions the harness would cast)."""
    return client.execute_command(*command)  # type: ignore[no-untyped-call]


def _wait(check: object, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached in {timeout_s} s")
        time.sleep(0.05)


@dataclass
class SentinelGroup:
    """A master, its replicas and the sentinels watching them."""

    servers: list[PrivateRedis]
    sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)
    sentinel_ports: list[int] = field(default_factory=list)
    down_after_ms: int = 1000
    failover_timeout_ms: int = 5000

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[index], decode_responses=True,
                           socket_timeout=2)

    def master_port(self) -> int:
        client = self.sentinel()
        try:
            return int(call(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)[1])
        finally:
            client.close()

    def server_on(self, port: int) -> PrivateRedis:
        return next(server for server in self.servers if server.port == port)

    def healthy(self, replicas: int) -> bool:
        """Every sentinel sees the master, `replicas` replicas and the other sentinels."""
        for index in range(len(self.sentinel_ports)):
            client = self.sentinel(index)
            try:
                state: dict[str, Any] = call(client, "SENTINEL MASTER", MASTER_NAME)
            finally:
                client.close()
            if (int(state["num-slaves"]) != replicas
                    or int(state["num-other-sentinels"]) != len(self.sentinel_ports) - 1
                    or "down" in state["flags"]):
                return False
        return True


def _sentinel_config(path: Path, port: int, master_port: int, group: SentinelGroup) -> None:
    path.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {path.parent}\n"
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} {group.down_after_ms}\n"
        f"sentinel failover-timeout {MASTER_NAME} {group.failover_timeout_ms}\n"
        f"sentinel parallel-syncs {MASTER_NAME} 2\n", encoding="utf-8")


@contextlib.contextmanager
def sentinel_group(replicas: int = 2, sentinels: int = 3) -> Iterator[SentinelGroup]:
    """Started and healthy; every process killed and every file removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="bullpen-sentinel-"))
    # A diskless sync waits 5 s for more replicas by default: start it at once.
    master = PrivateRedis(workdir / "master", persistent=False,
                          options=_REPLICATION)
    group = SentinelGroup([master])
    try:
        master.start()
        for index in range(replicas):
            replica = PrivateRedis(workdir / f"replica{index}", persistent=False, options=(
                *_REPLICATION, "--replicaof", "127.0.0.1", str(master.port)))
            group.servers.append(replica.start())
        for index in range(sentinels):
            port = free_port()
            config = workdir / f"sentinel{index}" / "sentinel.conf"
            config.parent.mkdir()
            _sentinel_config(config, port, master.port, group)
            group.sentinel_ports.append(port)
            group.sentinels.append(subprocess.Popen(
                [server_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        _wait(lambda: group.healthy(replicas), "a healthy sentinel group", 30)
        _wait(lambda: all(server.client.info("replication").get("master_link_status") == "up"
                          for server in group.servers[1:]), "replicas in sync", 30)
        yield group
    finally:
        for process in group.sentinels:
            process.kill()
            process.wait(5)
        for server in group.servers:
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
                server.process.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Cluster:
    """Cluster masters (and their replicas) on loopback ports."""

    servers: list[PrivateRedis]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{server.port}"
                                             for server in self.servers[:2])

    def flush(self) -> None:
        for server in self.servers:
            server.client.flushall()

    def slot_of(self, key: str) -> int:
        return int(call(self.alive()[0].client, "CLUSTER", "KEYSLOT", key))

    def owner_of(self, key: str) -> int:
        """The port of the master serving `key`'s slot."""
        return self.owner_of_slot(self.slot_of(key))

    def alive(self) -> list[PrivateRedis]:
        return [server for server in self.servers
                if server.process is not None and server.process.poll() is None]

    def owner_of_slot(self, slot: int) -> int:
        client = self.alive()[0].client
        for start, end, primary, *_replicas in call(client, "CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return int(primary[1])
        raise AssertionError(f"no master serves slot {slot}")

    def server_on(self, port: int) -> PrivateRedis:
        return next(server for server in self.servers if server.port == port)

    def all_keys(self, pattern: str) -> list[str]:
        return [str(key) for server in self.servers for key in server.client.keys(pattern)]


@contextlib.contextmanager
def redis_cluster(masters: int = 3, replicas: int = 0) -> Iterator[Cluster]:
    """A cluster of `masters` masters (`replicas` each, in sync), all slots assigned, state ok;
    the masters come first in `servers`."""
    workdir = Path(tempfile.mkdtemp(prefix="bullpen-cluster-"))
    cluster = Cluster([])
    try:
        for index in range(masters * (1 + replicas)):
            server = PrivateRedis(workdir / f"node{index}", persistent=False, options=(
                "--cluster-enabled", "yes", "--cluster-config-file",
                str(workdir / f"node{index}" / "nodes.conf"), "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS), *_REPLICATION,
                # The bus port defaults to port + 10000, past 65535 for a high free port.
                "--cluster-port", str(free_port())))
            cluster.servers.append(server.start())
        if masters == 1:  # redis-cli creates clusters of three masters or more
            call(cluster.servers[0].client, "CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        else:
            subprocess.run(["redis-cli", "--cluster", "create",
                            *(f"127.0.0.1:{server.port}" for server in cluster.servers),
                            "--cluster-replicas", str(replicas), "--cluster-yes"],
                           check=True, capture_output=True, timeout=30)
        _wait(lambda: all(server.client.cluster("info")["cluster_state"] == "ok"
                          for server in cluster.servers), "cluster_state:ok", 30)
        _wait(lambda: all(server.client.info("replication").get("master_link_status") == "up"
                          for server in cluster.servers[masters:]), "replicas in sync", 30)
        yield cluster
    finally:
        for server in cluster.servers:
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
                server.process.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


def migrate_slot(cluster: Cluster, slot: int, target_port: int, batch: int = 50,
                 pause_s: float = 0.0) -> int:
    """Move `slot` to the master on `target_port` as `redis-cli --cluster reshard` does
    (IMPORTING, MIGRATING, MIGRATE key batches, SETSLOT NODE everywhere); returns the keys moved.
    `pause_s` between batches keeps the slot half-moved longer (ASK and TRYAGAIN replies).
    """
    source = cluster.server_on(cluster.owner_of_slot(slot)).client
    target = cluster.server_on(target_port).client
    source_id, target_id = call(source, "CLUSTER", "MYID"), call(target, "CLUSTER", "MYID")
    call(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    call(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    moved = 0
    while keys := call(source, "CLUSTER", "GETKEYSINSLOT", slot, batch):
        call(source, "MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "KEYS", *keys)
        moved += len(keys)
        time.sleep(pause_s)
    for server in (target, source, *(other.client for other in cluster.servers)):
        call(server, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
    return moved
