"""Sentinel's `+switch-master` events, heard by one thread per Sentinel group and master name.

A connection asks Sentinel for the master only when it connects. After a forced failover or a
network partition the old master may keep accepting writes for seconds before Sentinel demotes
it, and every write it took then is lost when it resyncs from the new master. So connections
also compare the watch's `epoch` (bumped by each switch of their master) with the one they
connected under, and reconnect before sending anything when it changed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from bullpen.redis_address import RedisAddress

CHANNEL = "+switch-master"
RETRY_S = 1.0
_watches: dict[tuple[Any, ...], SwitchWatch] = {}
_watches_lock = threading.Lock()


class SwitchWatch:
    """Counts switches of one master, as any of the sentinels announces them."""

    def __init__(self, address: RedisAddress) -> None:
        self.epoch = 0
        self._address = address
        self._started = False
        self._heard = False  # subscribed once already: a later subscribe may have missed events
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start listening (once); a daemon thread, so it never holds a process open."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="bullpen-sentinel-watch", daemon=True).start()

    def _run(self) -> None:
        while True:
            for host, port in self._address.nodes:
                try:
                    self._listen(host, port)
                except (redis.RedisError, OSError):
                    continue
            time.sleep(RETRY_S)

    def _listen(self, host: str, port: int) -> None:
        address = self._address
        tls: dict[str, Any] = {"ssl": True, **address.tls} if address.uses_tls else {}
        client = redis.Redis(host=host, port=port, username=address.sentinel_username,
                             password=address.sentinel_password, socket_connect_timeout=2,
                             socket_keepalive=True, decode_responses=True, **tls)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            if self._heard:
                self.epoch += 1  # a switch may have happened while no sentinel was heard
            self._heard = True
            for message in pubsub.listen():  # type: ignore[no-untyped-call]
                if str(message.get("data", "")).split(" ", 1)[0] == address.master_name:
                    self.epoch += 1
        finally:
            pubsub.close()
            client.close()


def switch_watch(address: RedisAddress) -> SwitchWatch:
    """The process's watch of this Sentinel group's master (made on first use, not started)."""
    key = (address.nodes, address.master_name, address.sentinel_username, address.scheme)
    with _watches_lock:
        found = _watches.get(key)
        if found is None:
            found = _watches[key] = SwitchWatch(address)
        return found
