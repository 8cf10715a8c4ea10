"""Sentinel's announcements of a new master, heard by a thread per sentinel of a group.

A connection asks Sentinel for the master only when it connects. After a forced failover or a
network partition the old master may keep accepting writes for seconds before Sentinel demotes
it, and every write it took then is lost when it resyncs from the new master. So connections
also compare the watch's `epoch` (bumped when their master moves) with the one they connected
under, and reconnect, to the announced master, before sending anything when it changed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import redis

from bullpen.redis_address import RedisAddress

CHANNELS = ("+promoted-slave", "+switch-master")
RETRY_S = 1.0
_watches: dict[tuple[Any, ...], SwitchWatch] = {}
_watches_lock = threading.Lock()


class SwitchWatch:
    """Where the master went, as the sentinels announce it: `+promoted-slave` from the sentinel
    leading a failover (as soon as the replica answers as a master), then `+switch-master` from
    each. `master` is the announced address (None: ask Sentinel); `epoch` counts changes."""

    def __init__(self, address: RedisAddress) -> None:
        self.epoch = 0
        self.master: tuple[str, int] | None = None
        self._address = address
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Listen to every sentinel (the leader alone announces the promotion), once; daemon
        threads, so they never hold a process open."""
        with self._lock:
            if self._started:
                return
            self._started = True
        for host, port in self._address.nodes:
            threading.Thread(target=self._run, args=(host, port), daemon=True,
                             name=f"bullpen-sentinel-watch-{port}").start()

    def _run(self, host: str, port: int) -> None:
        heard = False
        while True:
            with contextlib.suppress(redis.RedisError, OSError):
                self._listen(host, port, heard)
            heard = True
            time.sleep(RETRY_S)

    def _listen(self, host: str, port: int, heard: bool) -> None:
        address = self._address
        tls: dict[str, Any] = {"ssl": True, **address.tls} if address.uses_tls else {}
        client = redis.Redis(host=host, port=port, username=address.sentinel_username,
                             password=address.sentinel_password, socket_connect_timeout=2,
                             socket_keepalive=True, decode_responses=True, **tls)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*CHANNELS)
            if heard:  # a switch may have happened while this sentinel was not heard
                self._moved_to(None)
            for message in pubsub.listen():  # type: ignore[no-untyped-call]
                found = _announced(str(message.get("channel")), str(message.get("data", "")))
                if found is not None and found[0] == address.master_name:
                    self._moved_to(found[1])
        finally:
            pubsub.close()
            client.close()

    def _moved_to(self, master: tuple[str, int] | None) -> None:
        with self._lock:
            if master is None or master != self.master:
                self.master = master
                self.epoch += 1


def _announced(channel: str, data: str) -> tuple[str, tuple[str, int]] | None:
    """(master name, its new address) from an announcement; None for anything else."""
    parts = data.split()
    try:
        if channel == "+switch-master":  # <name> <old ip> <old port> <new ip> <new port>
            return parts[0], (parts[3], int(parts[4]))
        # slave <name> <ip> <port> @ <master name> <master ip> <master port>
        if parts[0] == "slave" and "@" in parts:
            return parts[parts.index("@") + 1], (parts[2], int(parts[3]))
    except (IndexError, ValueError):
        pass
    return None


def switch_watch(address: RedisAddress) -> SwitchWatch:
    """The process's watch of this Sentinel group's master (made on first use, not started)."""
    key = (address.nodes, address.master_name, address.sentinel_username, address.scheme)
    with _watches_lock:
        found = _watches.get(key)
        if found is None:
            found = _watches[key] = SwitchWatch(address)
        return found
