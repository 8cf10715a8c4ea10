"""Shared CLI plumbing: settings with exit code 2 on bad config, async running, JSON output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer

from bullpen import logs
from bullpen.adapter import QueueClient, probe
from bullpen.errors import BullpenError, RedisUnavailableError, SettingsError
from bullpen.loader import Definitions, load_definitions
from bullpen.queue_names import check_queue_name
from bullpen.redis_tls import describe
from bullpen.redis_url import redact, resolve_url
from bullpen.settings import Settings, load_settings
from bullpen.telemetry import log_trace_ids

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    """Settings, or exit 2 with every bad variable listed."""
    try:
        loaded = load_settings()
    except SettingsError as exc:
        fail(str(exc), 2)
    logs.configure(loaded.log_level, loaded.log_format, log_trace_ids(loaded))
    return loaded


def definitions(loaded: Settings) -> Definitions:
    """bullpen's and the app's tasks and schedules, or exit 2 naming what is wrong."""
    try:
        return load_definitions(loaded.bullpen_app)
    except BullpenError as exc:
        fail(str(exc), 2)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine; a BullpenError becomes `error: …` and exit 1 (2 for settings)."""
    try:
        return asyncio.run(_await(coro))
    except SettingsError as exc:
        fail(str(exc), 2)
    except BullpenError as exc:
        fail(str(exc), 1)


async def _await(coro: Awaitable[T]) -> T:
    return await coro


def with_client(loaded: Settings, action: Callable[[QueueClient], Awaitable[T]],
                queue: str | None = None) -> T:
    """Run `action` with a client of `queue` (the default queue) that is closed afterwards."""

    async def one(clients: list[QueueClient]) -> T:
        return await action(clients[0])

    return with_clients(loaded, [queue or loaded.worker_default_queue], one)


def with_clients(loaded: Settings, queues: list[str],
                 action: Callable[[list[QueueClient]], Awaitable[T]]) -> T:
    """Run `action` with one client per queue, in order, all closed afterwards."""

    async def go() -> T:
        url = resolve_url(loaded)
        try:
            await probe(url)
        except Exception as exc:
            # The port's client retries a dead server for minutes; a command should say so now.
            raise RedisUnavailableError(
                f"Redis at {redact(url)} does not answer ({describe(exc, url)}); "
                "check WORKER_REDIS_URL and that the server runs (bullpen doctor tells more)"
            ) from None
        clients = [QueueClient(url, queue, loaded.worker_prefix, loaded.enqueue_wait)
                   for queue in queues]
        try:
            return await action(clients)
        finally:
            for client in clients:
                await client.close()

    return run(go())


def chosen_queues(loaded: Settings, queue: str | None) -> list[str]:
    """`--queue NAME` alone (any queue, a Node app's too), else every queue bullpen knows of:
    the default, WORKER_QUEUES' and those the app's tasks and schedules name. An app that
    cannot be loaded leaves the settings' queues, with a note on stderr."""
    if queue is not None:
        try:
            return [check_queue_name(queue, "--queue")]
        except BullpenError as exc:
            fail(str(exc), 2)
    try:
        return load_definitions(loaded.bullpen_app).queues(loaded)
    except BullpenError as exc:
        typer.echo(f"note: the app's tasks and schedules could not be loaded ({exc}); showing "
                   "the queues the settings name", err=True)
    default = loaded.worker_default_queue
    return [default, *sorted({spec.name for spec in loaded.queue_specs} - {default})]


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")
