"""Custom job ids: the ones Node BullMQ refuses, and names that are the queue's own Redis keys.

A job's hash lives at `<prefix>:<queue>:<id>`, beside the queue's own keys, so a job id `meta`
would be the queue's meta hash (its pause flag among others).
"""

from __future__ import annotations

import re

from bullpen.errors import JobIdError

# BullMQ's queue keys (Node's QueueKeys, plus metrics) and bullpen's own key root.
QUEUE_KEY_NAMES = frozenset({
    "active", "wait", "waiting-children", "paused", "id", "delayed", "prioritized",
    "stalled-check", "completed", "failed", "stalled", "repeat", "limiter", "meta", "events",
    "pc", "marker", "de", "metrics", "bullpen",
})
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


def is_queue_key(job_id: str) -> bool:
    """True when `job_id` names one of the queue's own keys: no job can have it."""
    return job_id in QUEUE_KEY_NAMES or not job_id


def check_job_id(job_id: str) -> None:
    """Raise JobIdError for a custom id Node BullMQ refuses, or one of the queue's key names."""
    if not job_id:
        raise JobIdError("job id '' is empty; leave it out for an id BullMQ numbers, or give one")
    if _INTEGER.fullmatch(job_id):
        raise JobIdError(f"job id {job_id!r}: custom ids cannot be integers (BullMQ numbers its "
                         "own jobs, and a later one would overwrite it); add a prefix, e.g. "
                         f"'report-{job_id}'")
    if ":" in job_id:
        raise JobIdError(f"job id {job_id!r}: custom ids cannot contain ':' (BullMQ builds Redis "
                         f"keys with it); use another separator, e.g. {job_id.replace(':', '-')!r}")
    if is_queue_key(job_id):
        raise JobIdError(f"job id {job_id!r} is the name of one of the queue's own Redis keys "
                         f"({', '.join(sorted(QUEUE_KEY_NAMES))}); choose another id")
