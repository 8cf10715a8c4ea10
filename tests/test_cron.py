"""Cron dialect: Node BullMQ's instants (seconds first in 6 fields; its DST rules), and errors."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bullpen import cron
from bullpen.definitions.schedule import ScheduledJob, validate
from bullpen.errors import ScheduleError
from bullpen.loader import load_registry
from tests.helpers import NODE_DIR

# Expected values were produced by Node BullMQ 6.7.0's cron-parser (tests/node/cron_next.mjs).
TABLE = [
    ('* * * * *', None, "2026-01-01T00:00:30", ['2026-01-01T00:01:00+00:00', '2026-01-01T00:02:00+00:00', '2026-01-01T00:03:00+00:00']),
    ('0 * * * *', None, "2026-01-01T00:00:00", ['2026-01-01T01:00:00+00:00', '2026-01-01T02:00:00+00:00', '2026-01-01T03:00:00+00:00']),
    ('0 2 * * *', None, "2026-01-01T03:00:00", ['2026-01-02T02:00:00+00:00', '2026-01-03T02:00:00+00:00', '2026-01-04T02:00:00+00:00']),
    ('0 */4 * * *', None, "2026-01-01T05:00:00", ['2026-01-01T08:00:00+00:00', '2026-01-01T12:00:00+00:00', '2026-01-01T16:00:00+00:00']),
    ('0 0 * * 0', None, "2026-01-01T00:00:00", ['2026-01-04T00:00:00+00:00', '2026-01-11T00:00:00+00:00', '2026-01-18T00:00:00+00:00']),
    ('0 0 1 * *', None, "2026-01-15T00:00:00", ['2026-02-01T00:00:00+00:00', '2026-03-01T00:00:00+00:00', '2026-04-01T00:00:00+00:00']),
    ('0 15 3 * * *', None, "2026-01-01T00:00:00", ['2026-01-01T03:15:00+00:00', '2026-01-02T03:15:00+00:00', '2026-01-03T03:15:00+00:00']),
    ('*/15 * * * * *', None, "2026-01-01T00:00:07", ['2026-01-01T00:00:15+00:00', '2026-01-01T00:00:30+00:00', '2026-01-01T00:00:45+00:00']),
    ('0 2 * * *', 'America/New_York', "2026-03-07T12:00:00", ['2026-03-08T03:00:00-04:00', '2026-03-09T02:00:00-04:00', '2026-03-10T02:00:00-04:00']),
    ('30 2 * * *', 'America/New_York', "2026-03-07T12:00:00", ['2026-03-08T03:30:00-04:00', '2026-03-09T02:30:00-04:00', '2026-03-10T02:30:00-04:00']),
    ('0 1 * * *', 'America/New_York', "2026-10-31T12:00:00", ['2026-11-01T01:00:00-04:00', '2026-11-02T01:00:00-05:00', '2026-11-03T01:00:00-05:00']),
    ('0 * * * *', 'America/New_York', "2026-11-01T00:30:00", ['2026-11-01T01:00:00-04:00', '2026-11-01T01:00:00-05:00', '2026-11-01T02:00:00-05:00']),
    ('30 1 * * *', 'Europe/Paris', "2026-03-28T12:00:00", ['2026-03-29T01:30:00+01:00', '2026-03-30T01:30:00+02:00', '2026-03-31T01:30:00+02:00']),
    ('0 2 * * *', 'Europe/Paris', "2026-10-24T12:00:00", ['2026-10-25T02:00:00+02:00', '2026-10-26T02:00:00+01:00', '2026-10-27T02:00:00+01:00']),
]


def _ms(wall: str, tz: str | None) -> int:
    return int(datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(tz or "UTC")).timestamp()
               * 1000)


@pytest.mark.parametrize(("pattern", "tz", "after", "expected"), TABLE)
def test_next_fire_times_match_node(pattern: str, tz: str | None, after: str,
                                    expected: list[str]) -> None:
    times = cron.next_fire_times(pattern, _ms(after, tz), tz, count=3)
    assert [moment.isoformat() for moment in times] == expected


@pytest.mark.parametrize(("pattern", "reason"), [
    ("0 * * *", "expected 5 or 6 fields, got 4"),
    ("0 0 0 * * * *", "expected 5 or 6 fields, got 7"),
    ("", "empty"),
    ("61 * * * *", r"invalid cron pattern '61 \* \* \* \*' \(.*out of range\)"),
    ("* * * * mon-xyz", "invalid cron pattern"),
])
def test_invalid_patterns_are_named_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        cron.check_pattern(pattern)


def test_schedule_errors_name_the_schedule() -> None:
    with pytest.raises(ScheduleError) as caught:
        validate([ScheduledJob("cleanup-exports-hourly", "exports.cleanup", pattern="0 * * *")],
                 load_registry(None))
    assert str(caught.value).startswith(
        "Schedule 'cleanup-exports-hourly': invalid cron pattern '0 * * *' (expected 5 or 6 fields")
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        validate([ScheduledJob("nightly", "health.check", pattern="0 2 * * *",
                               tz="Mars/Olympus")], load_registry(None))


@time_machine.travel(datetime(2026, 6, 1, 10, 29, 59, tzinfo=ZoneInfo("UTC")), tick=False)
def test_next_fire_times_from_now_under_frozen_time() -> None:
    now_ms = int(datetime.now(ZoneInfo("UTC")).timestamp() * 1000)
    assert cron.next_fire_ms("30 10 * * *", now_ms) == _ms("2026-06-01T10:30:00", None)


def test_describe_is_human_readable() -> None:
    assert cron.describe("0 2 * * *") == "At 02:00 AM"
    assert cron.describe("0 15 3 * * *") == "At 03:15 AM"


def _random_field(rng: random.Random, low: int, high: int) -> str:
    roll = rng.random()
    if roll < 0.35:
        return "*"
    if roll < 0.55:
        return str(rng.randint(low, high))
    if roll < 0.7:
        start = rng.randint(low, high)
        return f"{start}-{rng.randint(start, high)}"
    if roll < 0.85:
        return f"*/{rng.randint(2, max(2, (high - low) // 2))}"
    return ",".join(sorted({str(rng.randint(low, high)) for _ in range(3)}, key=int))


def _random_cases(count: int) -> list[dict[str, object]]:
    rng = random.Random(20261128)
    zones = ["America/New_York", "Europe/Paris", "Australia/Sydney", "Australia/Lord_Howe",
             "Asia/Tehran", "America/Santiago", "America/Havana", "UTC", None]
    around = ["2026-03-08T00:00", "2026-11-01T00:00", "2026-03-29T00:00", "2026-10-25T00:00",
              "2026-04-05T00:00", "2026-10-04T00:00", "2026-09-06T00:00", "2026-06-15T12:34"]
    cases: list[dict[str, object]] = []
    for _ in range(count):
        fields = [_random_field(rng, 0, 59), _random_field(rng, 0, 23),
                  _random_field(rng, 1, 28) if rng.random() < 0.3 else "*",
                  _random_field(rng, 1, 12) if rng.random() < 0.2 else "*",
                  _random_field(rng, 0, 6) if rng.random() < 0.3 else "*"]
        if rng.random() < 0.3:
            fields.insert(0, _random_field(rng, 0, 59))
        tz = rng.choice(zones)
        after = _ms(rng.choice(around), tz) - rng.randint(0, 6 * 3600 * 1000)
        cases.append({"pattern": " ".join(fields), "after_ms": after, "tz": tz, "count": 5})
    return cases


@pytest.mark.interop
@pytest.mark.skipif(not (NODE_DIR / "node_modules" / "cron-parser").is_dir()
                    or shutil.which("node") is None,
                    reason="Node BullMQ not installed (cd tests/node && npm ci)")
def test_random_patterns_fire_at_nodes_instants_across_dst() -> None:
    cases = _random_cases(400)
    result = subprocess.run(["node", str(NODE_DIR / "cron_next.mjs")], input=json.dumps(cases),
                            capture_output=True, text=True, check=True, timeout=60)
    expected = json.loads(result.stdout)
    mismatches = []
    compared = 0
    for case, node_times in zip(cases, expected, strict=True):
        if node_times is None:
            continue
        compared += 1
        ours, current = [], int(str(case["after_ms"]))
        for _ in range(5):
            current = cron.next_fire_ms(str(case["pattern"]), current, case["tz"])  # type: ignore[arg-type]
            ours.append(current)
        if ours != node_times:
            mismatches.append((case, node_times, ours))
    assert compared > 350
    assert not mismatches, mismatches[:3]


@pytest.mark.interop
@pytest.mark.skipif(not (NODE_DIR / "node_modules" / "cron-parser").is_dir()
                    or shutil.which("node") is None,
                    reason="Node BullMQ not installed (cd tests/node && npm ci)")
def test_nodes_aliases_are_accepted_and_fire_at_nodes_instants() -> None:
    cases = [{"pattern": alias, "after_ms": _ms(after, tz), "tz": tz, "count": 4}
             for alias in cron.PREDEFINED
             for tz, after in ((None, "2026-12-31T22:59:59"), ("Europe/Paris", "2026-03-28T23:30:00"),
                               ("America/New_York", "2026-11-01T00:30:00"))]
    result = subprocess.run(["node", str(NODE_DIR / "cron_next.mjs")], input=json.dumps(cases),
                            capture_output=True, text=True, check=True, timeout=60)
    for case, node_times in zip(cases, json.loads(result.stdout), strict=True):
        pattern, tz = str(case["pattern"]), case["tz"]
        cron.check_pattern(pattern)
        ours, current = [], int(str(case["after_ms"]))
        for _ in range(4):
            current = cron.next_fire_ms(pattern, current, tz)  # type: ignore[arg-type]
            ours.append(current)
        assert ours == node_times, case


def test_aliases_validate_and_describe_and_unknown_ones_are_named() -> None:
    validate([ScheduledJob("nightly", "health.check", pattern="@daily")], load_registry(None))
    assert cron.describe("@hourly") == "Every hour"
    with pytest.raises(ValueError, match="unknown alias; Node's are @yearly, @annually"):
        cron.check_pattern("@midnight")
