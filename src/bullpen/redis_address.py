"""Redis URLs: the one parser for every form bullpen accepts, and redaction safe for any string.

Each scheme has its own parser in SCHEMES: one server (redis, rediss, unix), Sentinel
(redis+sentinel, rediss+sentinel) and Cluster (redis+cluster, rediss+cluster). Parse errors never
carry the URL, only what is wrong with it: a password may hold any character, and a message
quoting the URL would print it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from bullpen.errors import SettingsError

EXAMPLE = "redis://localhost:6379/0"
FORMS = ("redis://[user:password@]host:port/db, rediss://… (TLS) or "
         "unix:///path/to/redis.sock")
SENTINEL_FORM = ("redis+sentinel://[user:password@]host1:26379,host2:26379/<master-name>/<db>"
                 "[?sentinel_username=…&sentinel_password=…] (rediss+sentinel:// for TLS)")
CLUSTER_FORM = "redis+cluster://[user:password@]host1:7000,host2:7001 (rediss+cluster:// for TLS)"
DEFAULT_PORT = 6379
SENTINEL_PORT = 26379
ENCODE_HINT = "in a password, percent-encode / # ? @ % as %2F %23 %3F %40 %25"
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,29}")
_HOST = re.compile(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]")
# In a URL that does not parse, a password value may run to the end (an unencoded `&`).
_SECRET_PARAM = re.compile(r"(?i)((?:password|pass|pwd|secret|token)=).*")
_COMMON_PARAMS = frozenset({"db", "username", "password"})
_TLS_PARAMS = frozenset({"ssl_cert_reqs", "ssl_ca_certs"})
_SENTINEL_PARAMS = frozenset({"sentinel_username", "sentinel_password"})
_MASTER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_CERT_REQS = ("none", "optional", "required")


class RedisUrlError(SettingsError):
    """A Redis URL that cannot be used; the message never contains the URL itself."""

    problem = ""


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where Redis is and how to log in: what a URL says, parsed once.

    `nodes` lists the sentinels (Sentinel) or the seed nodes (Cluster); a single server has
    `host` and `port` (or a socket `path`) instead.
    """

    scheme: str
    host: str | None = None
    port: int | None = None
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: dict[str, str] = field(default_factory=dict)
    nodes: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    @property
    def topology(self) -> str:
        """"sentinel", "cluster" or "single"."""
        return self.scheme.partition("+")[2] or "single"

    @property
    def uses_tls(self) -> bool:
        return self.scheme.startswith("rediss")

    def redacted(self) -> str:
        """The address as a URL with every password replaced by ***, safe to show anywhere."""
        login = ""
        if self.password is not None:
            login = f"{quote(self.username or '', safe='')}:***@"
        elif self.username is not None:
            login = f"{quote(self.username, safe='')}@"
        if self.path is not None:
            query = f"?db={self.db}" if self.db else ""
            return f"{self.scheme}://{login}{self.path}{query}"
        options = dict(self.tls)
        if self.sentinel_username is not None:
            options["sentinel_username"] = quote(self.sentinel_username, safe="")
        if self.sentinel_password is not None:
            options["sentinel_password"] = "***"
        query = "&".join(f"{key}={value}" for key, value in sorted(options.items()))
        query = f"?{query}" if query else ""
        if self.topology == "single":
            return f"{self.scheme}://{login}{_shown_host(self.host, self.port)}/{self.db}{query}"
        hosts = ",".join(_shown_host(host, port) for host, port in self.nodes)
        database = f"/{self.master_name}/{self.db}" if self.master_name else ""
        return f"{self.scheme}://{login}{hosts}{database}{query}"


def _shown_host(host: str | None, port: int | None) -> str:
    return f"[{host}]:{port}" if host and ":" in host else f"{host}:{port}"


def _fail(problem: str, forms: str = FORMS) -> RedisUrlError:
    example = f", e.g. {EXAMPLE}" if forms == FORMS else ""
    error = RedisUrlError(f"Redis URL: {problem}; expected {forms}{example}")
    error.problem = problem
    return error


@contextmanager
def _in_form(forms: str) -> Iterator[None]:
    """Errors of the shared pieces, re-raised naming the form being parsed."""
    try:
        yield
    except RedisUrlError as exc:
        raise _fail(exc.problem, forms) from None


def _login(userinfo: str | None) -> tuple[str | None, str | None]:
    if userinfo is None:
        return None, None
    user, colon, password = userinfo.partition(":")
    if not colon:
        return unquote(user), None
    return (unquote(user) or None), unquote(password)


def _host_port(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
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
        return host, default_port
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
    secret_nearby = any(key.endswith("password") for key, _, _ in items)
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


def _pick(rest: str, check: Callable[[str], object]) -> _Reading:
    """The standard reading, unless its host part fails `check` and a password holding
    `/ ? #` unencoded gives one that passes. Never when the host is fine, or `?password=a@b`
    would put a piece of the password where the host goes."""
    standard, *unencoded = _readings(rest)
    try:
        check(standard.location)
    except RedisUrlError:
        if not unencoded:
            raise
        return unencoded[0]
    return standard


def _parse_tcp(scheme: str, rest: str) -> RedisAddress:
    return _tcp_address(scheme, _pick(rest, _host_port))


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


def _hosts(location: str, default_port: int) -> tuple[tuple[str, int], ...]:
    if not location:
        raise _fail("no hosts")
    items = location.split(",")
    if not all(items):
        raise _fail("an empty entry in the host list (two commas, or one at an end)")
    return tuple(_host_port(item, default_port) for item in items)


def _topology_query(scheme: str, query: str, extra: frozenset[str]) -> dict[str, str]:
    tls = _TLS_PARAMS if scheme.startswith("rediss") else frozenset()
    return _query(query, _COMMON_PARAMS | extra | tls)


def _parse_sentinel(scheme: str, rest: str) -> RedisAddress:
    with _in_form(SENTINEL_FORM):
        reading = _pick(rest, lambda location: _hosts(location, SENTINEL_PORT))
        path, _, query = reading.tail.partition("?")
        parts = [part for part in path.strip("/").split("/") if part]
        if "#" in path or len(parts) > 2:
            raise _fail("after the hosts comes /<master-name>/<db> and nothing else ("
                        + ENCODE_HINT + ")")
        if not parts:
            raise _fail("no master name: the Sentinel service name goes after the hosts, "
                        "as in /mymaster/0")
        master_name = unquote(parts[0])
        if not _MASTER_NAME.fullmatch(master_name):
            raise _fail("the master name may hold only letters, digits, _ . and -")
        options = _topology_query(scheme, query, _SENTINEL_PARAMS)
        sentinel_login = options.pop("sentinel_username", None), options.pop(
            "sentinel_password", None)
        address = _address(scheme, reading.userinfo, options, parts[1] if len(parts) > 1 else "")
        return replace(address, nodes=_hosts(reading.location, SENTINEL_PORT),
                       master_name=master_name, sentinel_username=sentinel_login[0],
                       sentinel_password=sentinel_login[1])


def _parse_cluster(scheme: str, rest: str) -> RedisAddress:
    with _in_form(CLUSTER_FORM):
        reading = _pick(rest, lambda location: _hosts(location, DEFAULT_PORT))
        path, _, query = reading.tail.partition("?")
        options = _topology_query(scheme, query, frozenset())
        if path.strip("/") or "db" in options:
            raise _fail("a database number: Redis Cluster has only database 0, so the URL "
                        "ends after the hosts (" + ENCODE_HINT + ")")
        address = _address(scheme, reading.userinfo, options, "")
        return replace(address, nodes=_hosts(reading.location, DEFAULT_PORT))


SCHEMES: dict[str, Callable[[str, str], RedisAddress]] = {
    "redis": _parse_tcp,
    "rediss": _parse_tcp,
    "unix": _parse_unix,
    "redis+sentinel": _parse_sentinel,
    "rediss+sentinel": _parse_sentinel,
    "redis+cluster": _parse_cluster,
    "rediss+cluster": _parse_cluster,
}


def parse(url: str) -> RedisAddress:
    """The address a Redis URL names; RedisUrlError (without the URL in it) when malformed."""
    if not isinstance(url, str) or not url.strip():
        raise _fail("empty")
    scheme, separator, rest = url.strip().partition("://")
    if not separator:
        raise _fail("no scheme (the URL must start with redis://, rediss://, unix://, "
                    "redis+sentinel:// or redis+cluster://)")
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
