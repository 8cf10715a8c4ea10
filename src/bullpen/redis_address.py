"""Redis URLs: the one parser for every form bullpen accepts, and redaction safe for any string.

Each scheme has its own parser in SCHEMES: one server (redis, rediss, unix), Sentinel
(redis+sentinel, rediss+sentinel) and Cluster (redis+cluster, rediss+cluster). Parse errors never
carry the URL, only what is wrong with it: a password may hold any character, and a message
quoting the URL would print it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from bullpen.redis_url_parts import (
    DEFAULT_PORT,
    ENCODE_HINT,
    Reading,
    RedisUrlError,
    fail,
    in_form,
    pick,
    read_db,
    read_host_port,
    read_hosts,
    read_login,
    read_query,
)

__all__ = ["RedisAddress", "RedisUrlError", "parse", "redact"]

SENTINEL_FORM = ("redis+sentinel://[user:password@]host1:26379,host2:26379/<master-name>/<db>"
                 "[?sentinel_username=…&sentinel_password=…] (rediss+sentinel:// for TLS)")
CLUSTER_FORM = "redis+cluster://[user:password@]host1:7000,host2:7001 (rediss+cluster:// for TLS)"
SENTINEL_PORT = 26379
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,29}")
# In a URL that does not parse, a password value may run to the end (an unencoded `&`).
_SECRET_PARAM = re.compile(r"(?i)((?:password|pass|pwd|secret|token)=).*")
_COMMON_PARAMS = frozenset({"db", "username", "password"})
_TLS_PARAMS = frozenset({"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})
_SENTINEL_PARAMS = frozenset({"sentinel_username", "sentinel_password"})
_MASTER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_CERT_REQS = ("none", "optional", "required")


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


def _parse_tcp(scheme: str, rest: str) -> RedisAddress:
    return _tcp_address(scheme, pick(rest, read_host_port))


def _tcp_address(scheme: str, reading: Reading) -> RedisAddress:
    # Redis URLs have no fragment: a `#` in the query belongs to a value (`?password=a#b`).
    path, _, query = reading.tail.partition("?")
    if "#" in path:
        raise fail("a '#' after the host (" + ENCODE_HINT + ")")
    host, port = read_host_port(reading.location)
    allowed = _COMMON_PARAMS | (_TLS_PARAMS if scheme == "rediss" else frozenset())
    options = read_query(query, allowed)
    db_text = path.strip("/")
    if "/" in db_text:
        raise fail("more than one / after the host (" + ENCODE_HINT + ")")
    return _address(scheme, reading.userinfo, options, db_text, host=host, port=port)


def _address(scheme: str, userinfo: str | None, options: dict[str, str], db_text: str, *,
             host: str | None = None, port: int | None = None,
             path: str | None = None) -> RedisAddress:
    user, password = read_login(userinfo)
    db = read_db(db_text) if db_text else 0
    if "db" in options:
        query_db = read_db(options.pop("db"))
        if db_text and query_db != db:
            raise fail("two different database numbers (in the path and in ?db=)")
        db = query_db
    user = options.pop("username", user)
    password = options.pop("password", password)
    reqs = options.get("ssl_cert_reqs")
    if reqs is not None and reqs not in _CERT_REQS:
        raise fail(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
    return RedisAddress(scheme, host, port, path, db, user, password, options)


def _parse_unix(scheme: str, rest: str) -> RedisAddress:
    userinfo = None
    if not rest.startswith("/"):
        at = rest.rfind("@/")
        if at < 0:
            raise fail("a unix socket URL needs an absolute path, as in unix:///run/redis.sock")
        userinfo, rest = rest[:at], rest[at + 1:]
    path, _, query = rest.partition("?")
    if "#" in path:
        raise fail("a '#' in the socket path (" + ENCODE_HINT + ")")
    if path.rstrip("/") == "":
        raise fail("no socket path")
    options = read_query(query, _COMMON_PARAMS)
    return _address(scheme, userinfo, options, "", path=unquote(path))


def _topology_query(scheme: str, query: str, extra: frozenset[str]) -> dict[str, str]:
    tls = _TLS_PARAMS if scheme.startswith("rediss") else frozenset()
    return read_query(query, _COMMON_PARAMS | extra | tls)


def _parse_sentinel(scheme: str, rest: str) -> RedisAddress:
    with in_form(SENTINEL_FORM):
        reading = pick(rest, lambda location: read_hosts(location, SENTINEL_PORT))
        path, _, query = reading.tail.partition("?")
        parts = [part for part in path.strip("/").split("/") if part]
        if "#" in path or len(parts) > 2:
            raise fail("after the hosts comes /<master-name>/<db> and nothing else ("
                        + ENCODE_HINT + ")")
        if not parts:
            raise fail("no master name: the Sentinel service name goes after the hosts, "
                        "as in /mymaster/0")
        master_name = unquote(parts[0])
        if not _MASTER_NAME.fullmatch(master_name):
            raise fail("the master name may hold only letters, digits, _ . and -")
        options = _topology_query(scheme, query, _SENTINEL_PARAMS)
        sentinel_login = options.pop("sentinel_username", None), options.pop(
            "sentinel_password", None)
        address = _address(scheme, reading.userinfo, options, parts[1] if len(parts) > 1 else "")
        return replace(address, nodes=read_hosts(reading.location, SENTINEL_PORT),
                       master_name=master_name, sentinel_username=sentinel_login[0],
                       sentinel_password=sentinel_login[1])


def _parse_cluster(scheme: str, rest: str) -> RedisAddress:
    with in_form(CLUSTER_FORM):
        reading = pick(rest, lambda location: read_hosts(location, DEFAULT_PORT))
        path, _, query = reading.tail.partition("?")
        options = _topology_query(scheme, query, frozenset())
        if path.strip("/") or "db" in options:
            raise fail("a database number: Redis Cluster has only database 0, so the URL "
                        "ends after the hosts (" + ENCODE_HINT + ")")
        address = _address(scheme, reading.userinfo, options, "")
        return replace(address, nodes=read_hosts(reading.location, DEFAULT_PORT))


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
        raise fail("empty")
    scheme, separator, rest = url.strip().partition("://")
    if not separator:
        raise fail("no scheme (the URL must start with redis://, rediss://, unix://, "
                    "redis+sentinel:// or redis+cluster://)")
    scheme = scheme.lower()
    parser = SCHEMES.get(scheme)
    if parser is None:
        shown = repr(scheme) if _SCHEME.fullmatch(scheme) else "in it"
        raise fail(f"unsupported scheme {shown}")
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
