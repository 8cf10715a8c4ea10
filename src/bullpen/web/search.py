"""Finding jobs: one state's jobs a page at a time in time order, filtered by task or searched
for text in their task name, data or failure reason by a bounded scan that says where it stopped;
and a job id looked up in any state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bullpen.adapter import JOB_STATES, JobRecord, QueueClient
from bullpen.shown import fields_of

PAGE_SIZE = 25
# A filtered list or a search looks at this many of the state's jobs, newest (or oldest) first,
# and reads at most this much of their data; it says so when it stops before the end.
SCAN_LIMIT = 5000
SCAN_BYTES = 32 * 1024 * 1024
CHUNK = 200
# BullMQ pushes these lists at the head: index 0 is the newest job. The others are sorted sets
# scored by time (finished, due) or by priority.
LIST_KEYS = {"waiting": "wait", "paused": "paused", "active": "active"}
SORTS = ("newest", "oldest")


def job_dict(record: JobRecord) -> dict[str, Any]:
    """A job as JSON: the record's fields plus its duration and display name."""
    values = fields_of(record)
    values["duration_ms"] = record.duration_ms
    values["display_name"] = record.display_name
    return values


def default_sort(state: str) -> str:
    """Waiting jobs run oldest first, so that is how they are listed; the rest newest first."""
    return "oldest" if state in ("waiting", "paused") else "newest"


@dataclass(slots=True)
class JobQuery:
    state: str
    task: str | None = None
    text: str | None = None
    sort: str | None = None

    def __post_init__(self) -> None:
        if self.state not in JOB_STATES:
            raise ValueError(f"unknown job state {self.state!r} (expected one of "
                             f"{', '.join(JOB_STATES)})")
        if self.sort not in (None, "", *SORTS):
            raise ValueError(f"sort={self.sort!r}: expected newest or oldest")
        self.task = self.task or None
        self.text = (self.text or "").strip() or None
        self.sort = self.sort or default_sort(self.state)

    @property
    def filtered(self) -> bool:
        return bool(self.task or self.text)

    def path(self, page: int = 1, state: str | None = None) -> str:
        """This list's route path at `page`, or the same filters in another state (whose own
        default order then applies)."""
        params = {"page": str(page)}
        if self.task:
            params["task"] = self.task
        if self.text:
            params["q"] = self.text
        if state is None and self.sort != default_sort(self.state):
            params["sort"] = str(self.sort)
        return f"/jobs/{state or self.state}?{urlencode(params)}"


@dataclass(slots=True)
class JobPage:
    query: JobQuery
    page: int
    size: int
    jobs: list[JobRecord] = field(default_factory=list)
    total: int = 0
    has_next: bool = False
    paused: bool = False
    scanned: int | None = None  # filtered lists only: jobs looked at
    in_state: int = 0
    exact: JobRecord | None = None  # the job whose id is the search text, in any state

    @property
    def cut_short(self) -> bool:
        return self.scanned is not None and self.scanned < self.in_state

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_shown(self) -> int:
        return (self.page - 1) * self.size + 1 if self.jobs else 0

    def to_dict(self) -> dict[str, Any]:
        query = self.query
        return {"state": query.state, "task": query.task, "q": query.text, "sort": query.sort,
                "page": self.page, "size": self.size, "pages": self.pages, "total": self.total,
                "has_next": self.has_next, "paused": self.paused, "scanned": self.scanned,
                "in_state": self.in_state, "cut_short": self.cut_short,
                "exact": job_dict(self.exact) if self.exact else None,
                "jobs": [job_dict(job) for job in self.jobs]}


async def ordered_ids(client: QueueClient, state: str, start: int, end: int,
                      oldest_first: bool) -> list[str]:
    """Ids of a state's jobs `start`..`end` (inclusive) in time order."""
    redis = client.redis
    raw: list[Any]
    if state in LIST_KEYS:
        key = client.keys.bullmq(LIST_KEYS[state])
        if oldest_first:
            raw = list(reversed(await redis.lrange(key, -(end + 1), -(start + 1))))
        else:
            raw = await redis.lrange(key, start, end)
    else:
        key = client.keys.bullmq(state)
        raw = await (redis.zrange(key, start, end) if oldest_first
                     else redis.zrevrange(key, start, end))
    # A `0:` entry is a marker older BullMQ versions kept in the wait list, not a job.
    return [str(job_id) for job_id in raw if not str(job_id).startswith("0:")]


async def list_jobs(client: QueueClient, query: JobQuery, page: int,
                    size: int = PAGE_SIZE) -> JobPage:
    """One page of a state's jobs in the query's order, filtered and searched as it asks."""
    page = max(page, 1)
    result = JobPage(query, page, size, paused=await client.is_paused())
    result.in_state = (await client.get_counts([query.state]))[query.state]
    if query.text:
        found = await client.get_job(query.text)
        result.exact = found
    if not query.filtered:
        result.total = result.in_state
        start = (page - 1) * size
        ids = await ordered_ids(client, query.state, start, start + size - 1,
                                query.sort == "oldest")
    else:
        matches, result.scanned = await _scan(client, query)
        result.total = len(matches)
        ids = matches[(page - 1) * size:page * size]
    result.has_next = page * size < result.total
    for job_id in ids:
        record = await client.get_job(job_id)
        if record is not None:
            result.jobs.append(record)
    return result


async def _scan(client: QueueClient, query: JobQuery) -> tuple[list[str], int]:
    """Ids of the jobs that match, in order, and how many jobs were looked at."""
    wanted = ["name", "data", "failedReason"] if query.text else ["name"]
    needle = (query.text or "").casefold()
    matches: list[str] = []
    scanned = read_bytes = 0
    while scanned < SCAN_LIMIT and read_bytes < SCAN_BYTES:
        ids = await ordered_ids(client, query.state, scanned,
                                scanned + min(CHUNK, SCAN_LIMIT - scanned) - 1,
                                query.sort == "oldest")
        if not ids:
            break
        pipe = client.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(client.keys.bullmq(job_id), wanted)
        for job_id, values in zip(ids, await pipe.execute(), strict=True):
            read_bytes += sum(len(value) for value in values if value)
            if _matches(query.task, needle, values):
                matches.append(job_id)
        scanned += len(ids)
    return matches, scanned


def _matches(task: str | None, needle: str, values: list[str | None]) -> bool:
    name = values[0] or ""
    if task and name != task:
        return False
    if not needle:
        return True
    data = _readable(values[1]) if len(values) > 1 else ""
    reason = (values[2] or "") if len(values) > 2 else ""
    return any(needle in text.casefold() for text in (name, data, reason))


def _readable(data: str | None) -> str:
    """Stored data as a person would search it: Python producers escape non-ASCII (\\u00e9)."""
    if not data or "\\u" not in data:
        return data or ""
    try:
        return json.dumps(json.loads(data), ensure_ascii=False)
    except (ValueError, RecursionError):
        return data
