"""Which Redis bullpen talks to (configured URL or the embedded server), and waiting for it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bullpen import logs
from bullpen.adapter import QueueClient, probe
from bullpen.embedded import ensure_server
from bullpen.keyspace import check_cluster_keys
from bullpen.redis_address import parse, redact
from bullpen.redis_tls import describe
from bullpen.settings import Settings

__all__ = ["client_for", "redact", "refuse_untagged_cluster_keys", "resolve_url",
           "wait_for_redis"]

log = logs.get("worker")


def resolve_url(settings: Settings) -> str:
    """WORKER_REDIS_URL when set; otherwise the embedded server's address (started if needed,
    and then said on stderr: a command run from another directory starts another server)."""
    if settings.worker_redis_url:
        return settings.worker_redis_url
    return ensure_server(settings.bullpen_var_dir, on_start=_announce_start)


def _announce_start(directory: Path, url: str) -> None:
    sys.stderr.write(
        f"bullpen: started the embedded Redis server in {directory} ({url}). Commands use the "
        "server of their BULLPEN_VAR_DIR (default: ./var), so run them from this directory, or "
        "set BULLPEN_VAR_DIR or WORKER_REDIS_URL; `bullpen embedded stop` stops it.\n")
    sys.stderr.flush()


def refuse_untagged_cluster_keys(settings: Settings, queues: list[str]) -> None:
    """Under Redis Cluster, ClusterKeyError unless each of `queues` keeps its keys in one
    hash slot."""
    url = settings.worker_redis_url
    if url and parse(url).topology == "cluster":
        check_cluster_keys(settings.worker_prefix, queues)


def client_for(settings: Settings, url: str | None = None) -> QueueClient:
    return QueueClient(url or resolve_url(settings), settings.worker_default_queue,
                       settings.worker_prefix, settings.enqueue_wait)


async def wait_for_redis(url: str, stop: asyncio.Event | None = None,
                         max_delay_s: float = 10.0) -> bool:
    """Ping until Redis answers, backing off and logging; False if `stop` was set first."""
    delay = 0.5
    while True:
        try:
            await probe(url)
            return True
        except Exception as exc:
            log.warning("Redis at %s is unreachable (%s); retrying in %.1f s",
                        redact(url), describe(exc, url), delay)
        if stop is not None:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return False
            except TimeoutError:
                pass
        else:
            await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)
