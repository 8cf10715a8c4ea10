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
from bullpen.redis_url import client_for, redact, resolve_url
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


def with_client(loaded: Settings, action: Callable[[QueueClient], Awaitable[T]]) -> T:
    """Run `action` with a queue client that is closed afterwards."""

    async def go() -> T:
        url = resolve_url(loaded)
        try:
            await probe(url)
        except Exception as exc:
            # The port's client retries a dead server for minutes; a command should say so now.
            raise RedisUnavailableError(
                f"Redis at {redact(url)} does not answer ({type(exc).__name__}: {exc}); "
                "check WORKER_REDIS_URL and that the server runs (bullpen doctor tells more)"
            ) from None
        client = client_for(loaded, url)
        try:
            return await action(client)
        finally:
            await client.close()

    return run(go())


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")
