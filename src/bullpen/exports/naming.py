"""How bullpen names its files in the export directory, and reading a name back.

An export is two files: `bp-<id>.data` (the content) and `bp-<id>.meta` (its JSON metadata).
The id starts with the creation time in milliseconds, so cleanup knows a file's age from its
name alone. Writes in progress are `.bp-<id>.<data|meta>.<random>.tmp`.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

_ID = r"(?P<ms>\d{13})-(?P<rand>[0-9a-f]{16})"
# Matched with fullmatch: `$` would also accept a name ending in a newline.
_ID_RE = re.compile(_ID)
_FINAL_RE = re.compile(rf"bp-{_ID}\.(?P<kind>data|meta)")
_TEMP_RE = re.compile(rf"\.bp-{_ID}\.(?P<kind>data|meta)\.[0-9a-f]{{8}}\.tmp")


class Kind(Enum):
    DATA = "data"
    META = "meta"
    TEMP = "temp"


@dataclass(frozen=True, slots=True)
class ParsedName:
    """A bullpen-named file: which export, which part, and when the export was created."""

    export_id: str
    kind: Kind
    created_ms: int


def new_export_id(now_s: float | None = None) -> str:
    """`<13-digit creation ms>-<16 hex>`: sortable by age, unguessable, no personal data."""
    created_ms = int((time.time() if now_s is None else now_s) * 1000)
    return f"{created_ms:013d}-{secrets.token_hex(8)}"


def is_export_id(value: str) -> bool:
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def created_at(export_id: str) -> datetime:
    """The creation time carried in an export id (UTC)."""
    return datetime.fromtimestamp(int(export_id[:13]) / 1000, tz=UTC)


def data_name(export_id: str) -> str:
    return f"bp-{export_id}.data"


def meta_name(export_id: str) -> str:
    return f"bp-{export_id}.meta"


def temp_name(export_id: str, kind: Kind) -> str:
    return f".bp-{export_id}.{kind.value}.{secrets.token_hex(4)}.tmp"


def parse(name: str) -> ParsedName | None:
    """What a directory entry is to bullpen; None for a name bullpen never writes."""
    final = _FINAL_RE.fullmatch(name)
    match = final or _TEMP_RE.fullmatch(name)
    if match is None:
        return None
    export_id = f"{match['ms']}-{match['rand']}"
    kind = Kind(match["kind"]) if final else Kind.TEMP
    return ParsedName(export_id, kind, int(match["ms"]))
