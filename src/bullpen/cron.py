"""Cron patterns in Node BullMQ's dialect: 5 fields, or 6 with seconds first; next fire times."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from bullpen.errors import ScheduleError


def zone(tz: str | None) -> ZoneInfo | None:
    """The named IANA zone, or None for UTC; raises ValueError for an unknown name."""
    if not tz:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r} (expected an IANA name such as "
                         "'Europe/Paris' or 'UTC')") from exc


def check_pattern(pattern: str) -> None:
    """Raise ValueError with a reason if `pattern` is not a valid 5- or 6-field cron pattern."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"invalid cron pattern {pattern!r} (empty)")
    fields = pattern.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"invalid cron pattern {pattern!r} (expected 5 or 6 fields, got {len(fields)}; "
            "6 fields put seconds first, as in '0 15 3 * * *')"
        )
    try:
        croniter(pattern, datetime(2026, 1, 1, tzinfo=UTC), second_at_beginning=True).get_next(
            datetime
        )
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise ValueError(f"invalid cron pattern {pattern!r} ({exc})") from None


def next_fire_ms(pattern: str, after_ms: int, tz: str | None = None) -> int:
    """The first fire time strictly after `after_ms` (epoch ms), evaluated in zone `tz`."""
    tzinfo = zone(tz) or UTC
    base = datetime.fromtimestamp(after_ms / 1000, tz=tzinfo)
    itr = croniter(pattern, base, second_at_beginning=True)
    return int(itr.get_next(datetime).timestamp() * 1000)


def next_fire_times(pattern: str, after_ms: int, tz: str | None = None, count: int = 3
                    ) -> list[datetime]:
    """The next `count` fire times, as aware datetimes in the schedule's zone."""
    tzinfo = zone(tz) or UTC
    times: list[datetime] = []
    current = after_ms
    for _ in range(count):
        current = next_fire_ms(pattern, current, tz)
        times.append(datetime.fromtimestamp(current / 1000, tz=tzinfo))
    return times


def describe(pattern: str) -> str:
    """A human description ('At 02:00 AM'); falls back to the pattern itself."""
    try:
        from cron_descriptor import Options, get_description

        options = Options()
        options.verbose = False
        # cron-descriptor reads a 6-field pattern with seconds first, as Node does.
        return str(get_description(pattern, options))
    except Exception:
        return pattern


def raise_for_schedule(name: str, pattern: str, tz: str | None) -> None:
    """Validate a schedule's pattern and zone, naming the schedule in the error."""
    try:
        check_pattern(pattern)
        zone(tz)
    except ValueError as exc:
        raise ScheduleError(f"Schedule {name!r}: {exc}") from None
