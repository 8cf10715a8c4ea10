"""Helpers shared by the web tests."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx

from tests.helpers.processes import Proc, eventually
from tests.helpers.redis_server import free_port


async def csrf_token(http: httpx.AsyncClient, page: str = "/enqueue") -> str:
    """The CSRF token a dashboard page embeds in its forms (and sets the cookie it binds to)."""
    response = await http.get(page)
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, f"no CSRF token on {page}: {response.status_code} {response.text[:300]}"
    return match.group(1)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def job_state(http: httpx.AsyncClient, job_id: str) -> str:
    response = await http.get(f"/api/jobs/{job_id}")
    return str(response.json().get("state"))


async def wait_for_state(http: httpx.AsyncClient, job_id: str, state: str,
                         timeout_s: float = 15) -> None:
    async def reached() -> bool:
        return await job_state(http, job_id) == state

    await wait_until(reached, timeout_s)


@contextlib.contextmanager
def running_web(env: dict[str, str], *extra: str) -> Iterator[tuple[Proc, str]]:
    """A real `bullpen web` on a free loopback port; yields it and its base URL."""
    port = free_port()
    proc = Proc(["web", "--port", str(port), *extra], env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.popen.poll() is not None:
            return True
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually(up, timeout=20, interval=0.1)
        assert proc.popen.poll() is None, f"bullpen web exited:\n{proc.output}"
        yield proc, base
    finally:
        proc.kill()
