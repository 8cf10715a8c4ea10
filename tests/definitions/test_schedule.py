"""Validation of declared schedules, before anything is written to Redis."""

from __future__ import annotations

import pytest

from bullpen.definitions.schedule import ScheduledJob, validate
from bullpen.errors import ScheduleError
from bullpen.loader import load_registry

REGISTRY = load_registry(None)


@pytest.mark.parametrize(("schedule", "message"), [
    (ScheduledJob("nightly", "my.task", pattern="0 2 * * *"),
     "Schedule 'nightly': unknown task 'my.task' "
     "(known: exports.cleanup, exports.create, health.check)"),
    (ScheduledJob("cleanup-exports-hourly", "exports.cleanup", pattern="0 * * *"),
     "Schedule 'cleanup-exports-hourly': invalid cron pattern '0 * * *' (expected 5 or 6 fields"),
    (ScheduledJob("paris", "health.check", pattern="0 2 * * *", tz="Europe/Parris"),
     "Schedule 'paris': unknown time zone 'Europe/Parris'"),
    (ScheduledJob("both", "health.check", pattern="0 2 * * *", every_ms=1000),
     "Schedule 'both': set exactly one of pattern or every_ms"),
    (ScheduledJob("neither", "health.check"), "Schedule 'neither': set exactly one"),
    (ScheduledJob("bad:name", "health.check", every_ms=1000), "must be non-empty and contain no"),
    (ScheduledJob("blob", "health.check", every_ms=1000, data={"x": object()}),
     "Schedule 'blob': data is not JSON-serialisable"),
])
def test_each_bad_schedule_is_named_with_the_reason(schedule: ScheduledJob, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate([schedule], REGISTRY)
    assert message in str(caught.value)


def test_duplicate_names_and_every_problem_are_reported_together() -> None:
    items = [ScheduledJob("a", "health.check", every_ms=1000),
             ScheduledJob("a", "nope", pattern="bad")]
    with pytest.raises(ScheduleError) as caught:
        validate(items, REGISTRY)
    text = str(caught.value)
    assert "Schedule 'a': duplicate schedule name" in text
    assert "unknown task 'nope'" in text and "invalid cron pattern 'bad'" in text
