"""Worker connection names as Node BullMQ 6 writes and finds them (`Queue.getWorkers()`)."""

from __future__ import annotations

import base64
import os
import socket
from dataclasses import dataclass


def queue_client_name(prefix: str, queue: str) -> str:
    """`<prefix>:<base64 of the queue name's UTF-8 bytes>`: Node's `clientName()`."""
    return f"{prefix}:{base64.b64encode(queue.encode()).decode('ascii')}"


def worker_client_name(prefix: str, queue: str, worker_name: str | None) -> str:
    """The blocking connection's name: BullMQ tools list a worker by it."""
    base = queue_client_name(prefix, queue)
    return f"{base}:w:{worker_name}" if worker_name else base


def default_worker_name() -> str:
    """`<host>:<pid>`: what bull-board and `getWorkers()` show for a bullpen worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_worker_connection(name: str, prefix: str, queue: str) -> bool:
    """Node's matcher: the queue's bare client name, or it followed by `:w:<worker name>`."""
    base = queue_client_name(prefix, queue)
    return name == base or name.startswith(f"{base}:w:")


@dataclass(frozen=True, slots=True)
class BullmqWorker:
    """One worker connection on a queue, as CLIENT LIST shows it."""

    name: str | None
    raw_name: str
    addr: str
    age_s: int
    idle_s: int


def parse_client_list(text: str, prefix: str, queue: str) -> list[BullmqWorker]:
    """The queue's worker connections in a CLIENT LIST reply, split as Node splits it."""
    named = f"{queue_client_name(prefix, queue)}:w:"
    found = []
    for line in text.splitlines():
        fields = dict(item.partition("=")[::2] for item in line.split(" ") if item)
        raw_name = fields.get("name", "")
        if not raw_name or not is_worker_connection(raw_name, prefix, queue):
            continue
        worker_name = raw_name.removeprefix(named) if raw_name.startswith(named) else None
        found.append(BullmqWorker(name=worker_name, raw_name=raw_name,
                                  addr=fields.get("addr", ""),
                                  age_s=_int(fields.get("age")), idle_s=_int(fields.get("idle"))))
    return found


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
