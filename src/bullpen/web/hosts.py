"""Which Host and Origin headers the dashboard answers to: DNS rebinding and cross-site writes.

A page on attacker.test whose name is re-pointed at 127.0.0.1 talks to the dashboard as its
own origin, so cookies, CSRF tokens and SameSite do not stop it; only the Host header it must
send (attacker.test) gives it away. Like Django's ALLOWED_HOSTS, only configured names are
answered: the loopback names and the bound address by default, WEB_ALLOWED_HOSTS otherwise.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_HOST = re.compile(r"(?P<name>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(:(?P<port>\d{1,5}))?")


def host_name(value: str) -> str | None:
    """The name in a Host header value (lower case, no port, no brackets); None if malformed."""
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    return match["name"].strip("[]").lower().rstrip(".")


class HostPolicy:
    """The host names this dashboard answers to, and the origins that may write to it."""

    def __init__(self, configured: list[str], bind_host: str) -> None:
        self.configured = [name.lower() for name in configured]
        names = self.configured or [*LOOPBACK_NAMES,
                                    *([bind_host] if bind_host not in WILDCARD_BINDS else [])]
        self.any = "*" in names
        self.exact = {name.strip("[]").lower() for name in names if not name.startswith(".")}
        self.suffixes = tuple(name for name in names if name.startswith("."))

    def describe(self) -> str:
        return "any host" if self.any else ", ".join(sorted(self.exact | set(self.suffixes)))

    def _allowed(self, name: str) -> bool:
        return self.any or name in self.exact or any(
            name.endswith(suffix) or name == suffix[1:] for suffix in self.suffixes)

    def host_ok(self, header: str) -> bool:
        name = host_name(header)
        return name is not None and self._allowed(name)

    def origin_ok(self, origin: str, host_header: str) -> bool:
        """A state-changing request's Origin: absent (not a browser's cross-origin request),
        the page's own host, or a configured name. `null` (sandboxed frames, some redirects)
        never is."""
        if not origin:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        if parts.netloc.lower() == host_header.strip().lower():
            return True
        name = host_name(parts.netloc)
        return bool(self.configured) and name is not None and self._allowed(name)
