"""Pieces of a Redis URL, read for redis_address.py's parsers: hosts and ports, the database
number, query options, where a login ends; errors say what is wrong, never quoting the URL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

from bullpen.errors import SettingsError

EXAMPLE = "redis://localhost:6379/0"
FORMS = ("redis://[user:password@]host:port/db, rediss://… (TLS) or "
         "unix:///path/to/redis.sock")
DEFAULT_PORT = 6379
ENCODE_HINT = "in a password, percent-encode / # ? @ % as %2F %23 %3F %40 %25"
HOST = re.compile(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]")


class RedisUrlError(SettingsError):
    """A Redis URL that cannot be used; the message never contains the URL itself."""

    problem = ""



def fail(problem: str, forms: str = FORMS) -> RedisUrlError:
    example = f", e.g. {EXAMPLE}" if forms == FORMS else ""
    error = RedisUrlError(f"Redis URL: {problem}; expected {forms}{example}")
    error.problem = problem
    return error


@contextmanager
def in_form(forms: str) -> Iterator[None]:
    """Errors of the shared pieces, re-raised naming the form being parsed."""
    try:
        yield
    except RedisUrlError as exc:
        raise fail(exc.problem, forms) from None



def read_login(userinfo: str | None) -> tuple[str | None, str | None]:
    if userinfo is None:
        return None, None
    user, colon, password = userinfo.partition(":")
    if not colon:
        return unquote(user), None
    return (unquote(user) or None), unquote(password)


def read_host_port(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    host, port_text = text, ""
    if text.startswith("["):
        close = text.find("]")
        host, rest = text[:close + 1], text[close + 1:]
        if rest and not rest.startswith(":"):
            raise fail("the host is not followed by :port")
        port_text = rest[1:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not host:
        raise fail("no host name")
    if not HOST.fullmatch(host):
        raise fail("the host name has characters a host cannot have (" + ENCODE_HINT + ")")
    host = host.strip("[]")
    if port_text == "":
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise fail("the port is not a number from 1 to 65535 (" + ENCODE_HINT + ")")
    return host, int(port_text)


def read_db(text: str) -> int:
    if not text.isdigit() or len(text) > 5:
        raise fail("the database number (after the /) is not a small whole number")
    return int(text)


def read_query(text: str, allowed: frozenset[str]) -> dict[str, str]:
    items = [item.partition("=") for item in text.split("&") if item]
    # After a password, an "unknown option" may be the rest of a password holding an `&`.
    secret_nearby = any(key.endswith("password") for key, _, _ in items)
    values: dict[str, str] = {}
    for key, equals, value in items:
        if not equals or key not in allowed:
            named = re.fullmatch(r"[a-z_]{1,30}", key) and equals and not secret_nearby
            shown = f" {key!r}" if named else ""
            raise fail(f"unknown query option{shown} (known: {', '.join(sorted(allowed))}; "
                        f"{ENCODE_HINT})")
        values[key] = unquote(value)
    return values


@dataclass(frozen=True, slots=True)
class Reading:
    """One way to cut a URL into login, host and the rest, before any piece is checked."""

    userinfo: str | None
    location: str
    tail: str


def split(rest: str) -> tuple[str, str]:
    """`rest` cut at its first `/`, `?` or `#`."""
    ends = [index for index in (rest.find(char) for char in "/?#") if index >= 0]
    end = min(ends, default=len(rest))
    return rest[:end], rest[end:]


def readings(rest: str) -> list[Reading]:
    """The standard reading; then, if some `@` comes after a `/`, `?` or `#`, the reading of a
    password that holds those characters unencoded."""
    authority, tail = split(rest)
    userinfo, at, location = authority.rpartition("@")
    found = [Reading(userinfo if at else None, location, tail)]
    last_at = rest.rfind("@")
    if last_at > len(authority):
        location, tail = split(rest[last_at + 1:])
        found.append(Reading(rest[:last_at], location, tail))
    return found


def pick(rest: str, check: Callable[[str], object]) -> Reading:
    """The standard reading, unless its host part fails `check` and a password holding
    `/ ? #` unencoded gives one that passes. Never when the host is fine, or `?password=a@b`
    would put a piece of the password where the host goes."""
    standard, *unencoded = readings(rest)
    try:
        check(standard.location)
    except RedisUrlError:
        if not unencoded:
            raise
        return unencoded[0]
    return standard



def read_hosts(location: str, default_port: int) -> tuple[tuple[str, int], ...]:
    if not location:
        raise fail("no hosts")
    items = location.split(",")
    if not all(items):
        raise fail("an empty entry in the host list (two commas, or one at an end)")
    return tuple(read_host_port(item, default_port) for item in items)
