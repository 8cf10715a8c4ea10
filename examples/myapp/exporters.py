"""The app's exporters: `client.exports.request("team.members")` writes them as CSV or JSONL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bullpen import exporter

TEAM = [("Ada", "ada@example.com"), ("Grace", "grace@example.com")]


@exporter("team.members", columns=("name", "email"), filename="team")
def team_members(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    # A plain def runs in a worker thread: read the database with a cursor and yield rows.
    for name, email in TEAM:
        yield {"name": name, "email": email}
