"""Redis URLs: the one parser for every form bullpen accepts, and redaction safe for any string.

Each scheme has its own parser in SCHEMES, so a new form (sentinel, cluster) is one function
and one entry. Parse errors never carry the URL, only what is wrong with it: a password may
hold any character, and a message quoting the URL would print it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from bullpen.errors import SettingsError

EXAMPLE = "redis://localhost:6379/0"
FORMS = ("redis://[user:password@]host:port/db, rediss://… (TLS) or "
         "unix:///path/to/redis.sock")
DEFAULT_PORT = 6379
ENCODE_HINT = "in a password, percent-encode / # ? @ % as %2F %23 %3F %40 %25"
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,29}")
_HOST = re.compile(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]")
# In a URL that does not parse, a password value may run to the end (an unencoded `&`).
_SECRET_PARAM = re.compile(r"(?i)((?:password|pass|pwd|secret|token)=).*")
_COMMON_PARAMS = frozenset({"db", "username", "password"})
_TLS_PARAMS = frozenset({"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})
_CERT_REQS = ("none", "optional", "required")


class RedisUrlError(SettingsError):
    """A Redis URL that cannot be used; the message never contains the URL itself."""


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a Redis server is and how to log in: what a URL says, parsed once."""

    scheme: str
    host: str | None = None
    port: int | None = None
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: dict[str, str] = field(default_factory=dict)

    def redacted(self) -> str:
        """The address as a URL with the password replaced by ***, safe to show anywhere."""
        login = ""
        if self.password is not None:
            login = f"{quote(self.username or '', safe='')}:***@"
        elif self.username is not None:
            login = f"{quote(self.username, safe='')}@"
        if self.path is not None:
            query = f"?db={self.db}" if self.db else ""
            return f"{self.scheme}://{login}{self.path}{query}"
        options = "&".join(f"{key}={value}" for key, value in sorted(self.tls.items()))
        query = f"?{options}" if options else ""
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.scheme}://{login}{host}:{self.port}/{self.db}{query}"


def _fail(problem: str) -> RedisUrlError:
    return RedisUrlError(f"Redis URL: {problem}; expected {FORMS}, e.g. {EXAMPLE}")


def _login(userinfo: str | None) -> tuple[str | None, str | None]:
    if userinfo is None:
        return None, None
    user, colon, password = userinfo.partition(":")
    if not colon:
        return unquote(user), None
    return (unquote(user) or None), unquote(password)


def _host_port(text: str) -> tuple[str, int]:
    host, port_text = text, ""
    if text.startswith("["):
        close = text.find("]")
        host, rest = text[:close + 1], text[close + 1:]
        if rest and not rest.startswith(":"):
            raise _fail("the host is not followed by :port")
        port_text = rest[1:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not host:
        raise _fail("no host name")
    if not _HOST.fullmatch(host):
        raise _fail("the host name has characters a host cannot have (" + ENCODE_HINT + ")")
    host = host.strip("[]")
    if port_text == "":
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _fail("the port is not a number from 1 to 65535 (" + ENCODE_HINT + ")")
    return host, int(port_text)


def _db(text: str) -> int:
    if not text.isdigit() or len(text) > 5:
        raise _fail("the database number (after the /) is not a small whole number")
    return int(text)


def _query(text: str, allowed: frozenset[str]) -> dict[str, str]:
    items = [item.partition("=") for item in text.split("&") if item]
    # After a password, an "unknown option" may be the rest of a password holding an `&`.
    secret_nearby = any(key == "password" for key, _, _ in items)
    values: dict[str, str] = {}
    for key, equals, value in items:
        if not equals or key not in allowed:
            named = re.fullmatch(r"[a-z_]{1,30}", key) and equals and not secret_nearby
            shown = f" {key!r}" if named else ""
            raise _fail(f"unknown query option{shown} (known: {', '.join(sorted(allowed))}; "
                        f"{ENCODE_HINT})")
        values[key] = unquote(value)
    return values


@dataclass(frozen=True, slots=True)
class _Reading:
    """One way to cut a URL into login, host and the rest, before any piece is checked."""

    userinfo: str | None
    location: str
    tail: str


def _split(rest: str) -> tuple[str, str]:
    """`rest` cut at its first `/`, `?` or `#`."""
    ends = [index for index in (rest.find(char) for char in "/?#") if index >= 0]
    end = min(ends, default=len(rest))
    return rest[:end], rest[end:]


def _readings(rest: str) -> list[_Reading]:
    """The standard reading; then, if some `@` comes after a `/`, `?` or `#`, the reading of a
    password that holds those characters unencoded."""
    authority, tail = _split(rest)
    userinfo, at, location = authority.rpartition("@")
    found = [_Reading(userinfo if at else None, location, tail)]
    last_at = rest.rfind("@")
    if last_at > len(authority):
        location, tail = _split(rest[last_at + 1:])
        found.append(_Reading(rest[:last_at], location, tail))
    return found


def _parse_tcp(scheme: str, rest: str) -> RedisAddress:
    standard, *unencoded = _readings(rest)
    try:
        _host_port(standard.location)
    except RedisUrlError:
        # No valid host where the standard reading puts it: read the password as holding its
        # `/ ? #` unencoded. Never when the host is fine, or `?password=a@b` would put a piece
        # of the password where the host goes.
        if not unencoded:
            raise
        return _tcp_address(scheme, unencoded[0])
    return _tcp_address(scheme, standard)


def _tcp_address(scheme: str, reading: _Reading) -> RedisAddress:
    # Redis URLs have no fragment: a `#` in the query belongs to a value (`?password=a#b`).
    path, _, query = reading.tail.partition("?")
    if "#" in path:
        raise _fail("a '#' after the host (" + ENCODE_HINT + ")")
    host, port = _host_port(reading.location)
    allowed = _COMMON_PARAMS | (_TLS_PARAMS if scheme == "rediss" else frozenset())
    options = _query(query, allowed)
    db_text = path.strip("/")
    if "/" in db_text:
        raise _fail("more than one / after the host (" + ENCODE_HINT + ")")
    return _address(scheme, reading.userinfo, options, db_text, host=host, port=port)


def _address(scheme: str, userinfo: str | None, options: dict[str, str], db_text: str, *,
             host: str | None = None, port: int | None = None,
             path: str | None = None) -> RedisAddress:
    user, password = _login(userinfo)
    db = _db(db_text) if db_text else 0
    if "db" in options:
        query_db = _db(options.pop("db"))
        if db_text and query_db != db:
            raise _fail("two different database numbers (in the path and in ?db=)")
        db = query_db
    user = options.pop("username", user)
    password = options.pop("password", password)
    reqs = options.get("ssl_cert_reqs")
    if reqs is not None and reqs not in _CERT_REQS:
        raise _fail(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
    return RedisAddress(scheme, host, port, path, db, user, password, options)


def _parse_unix(scheme: str, rest: str) -> RedisAddress:
    userinfo = None
    if not rest.startswith("/"):
        at = rest.rfind("@/")
        if at < 0:
            raise _fail("a unix socket URL needs an absolute path, as in unix:///run/redis.sock")
        userinfo, rest = rest[:at], rest[at + 1:]
    path, _, query = rest.partition("?")
    if "#" in path:
        raise _fail("a '#' in the socket path (" + ENCODE_HINT + ")")
    if path.rstrip("/") == "":
        raise _fail("no socket path")
    options = _query(query, _COMMON_PARAMS)
    return _address(scheme, userinfo, options, "", path=unquote(path))


SCHEMES: dict[str, Callable[[str, str], RedisAddress]] = {
    "redis": _parse_tcp,
    "rediss": _parse_tcp,
    "unix": _parse_unix,
}


def parse(url: str) -> RedisAddress:
    """The address a Redis URL names; RedisUrlError (without the URL in it) when malformed."""
    if not isinstance(url, str) or not url.strip():
        raise _fail("empty")
    scheme, separator, rest = url.strip().partition("://")
    if not separator:
        raise _fail("no scheme (the URL must start with redis://, rediss:// or unix://)")
    scheme = scheme.lower()
    parser = SCHEMES.get(scheme)
    if parser is None:
        shown = repr(scheme) if _SCHEME.fullmatch(scheme) else "in it"
        raise _fail(f"unsupported scheme {shown}")
    return parser(scheme, rest)


def redact(url: str) -> str:
    """`url` with any password replaced by ***, whether or not it parses."""
    try:
        return parse(url).redacted()
    except RedisUrlError:
        return _blunt_redact(url)


def _blunt_redact(url: str) -> str:
    """For a URL that does not parse: hide everything that could be a login or a password."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    rest = _SECRET_PARAM.sub(r"\1***", rest)  # first: a password value may hold an @
    at = rest.rfind("@")
    if at >= 0:
        rest = "***@" + rest[at + 1:]
    return f"{scheme}{separator}{rest}"
