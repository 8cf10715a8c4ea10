"""The BullMQ Python port's own worker, tuned as its users can (hiredis, uvloop, a pooled
client), draining no-op jobs: the baseline bullpen is measured against besides Node.

`python -m bench.port_worker URL QUEUE CONCURRENCY` prints "ready", runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import bullmq
import redis.asyncio as aioredis
import uvloop


async def _noop(_job: Any, _token: str) -> None:
    return None


async def main(url: str, queue: str, concurrency: int) -> None:
    # A pooled client with no read timeout: the port's own single-connection default runs one
    # command at a time, and redis-py 8's 5 s read timeout breaks its blocking waits.
    client = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=None)
    worker = bullmq.Worker(queue, _noop, {"connection": client, "concurrency": concurrency,
                                          "autorun": False})
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    running = asyncio.ensure_future(worker.run())
    print("ready", flush=True)
    await stopping.wait()
    await asyncio.wait_for(worker.close(), 10)
    running.cancel()
    await client.aclose()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
