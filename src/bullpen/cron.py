"""Cron patterns in Node BullMQ's dialect: 5 fields, or 6 with seconds first; next fire times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter


def zone(tz: str | None) -> ZoneInfo | None:
    """The named IANA zone, or None for UTC; raises ValueError for an unknown name."""
    if not tz:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r} (expected an IANA name such as "
                         "'Europe/Paris' or 'UTC')") from exc


# The aliases Node's cron-parser (v5) accepts, matched on the whole pattern as it does.
PREDEFINED = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@hourly": "0 0 * * * *",
    "@minutely": "0 * * * * *", "@secondly": "* * * * * *", "@weekdays": "0 0 0 * * 1-5",
    "@weekends": "0 0 0 * * 0,6",
}


def expand(pattern: str) -> str:
    """The fields an alias such as `@hourly` stands for; any other pattern unchanged."""
    return PREDEFINED.get(pattern, pattern)


def check_pattern(pattern: str) -> None:
    """Raise ValueError with a reason if `pattern` is not a valid 5- or 6-field cron pattern
    or one of Node's aliases (`@hourly`, `@daily`, …)."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"invalid cron pattern {pattern!r} (empty)")
    if pattern.startswith("@") and pattern not in PREDEFINED:
        raise ValueError(f"invalid cron pattern {pattern!r} (unknown alias; Node's are "
                         f"{', '.join(PREDEFINED)})")
    pattern = expand(pattern)
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
        raise ValueError(f"invalid cron pattern {pattern!r} ({exc}); fields are minute hour "
                         "day-of-month month day-of-week, e.g. '0 * * * *' for hourly") from None


_DST_MARGIN = timedelta(hours=3)


def _all_hours(pattern: str) -> bool:
    # croniter's expanded fields are always ordered minute, hour, day, month, weekday[, second].
    hours = croniter(pattern, datetime(2026, 1, 1), second_at_beginning=True).expanded[1]
    return hours == ["*"] or len(hours) == 24


def _exists(wall: datetime, tzinfo: ZoneInfo) -> bool:
    return _wall(int(wall.replace(tzinfo=tzinfo).timestamp() * 1000), tzinfo) == wall


def _instants(wall: datetime, tzinfo: ZoneInfo, both_folds: bool) -> set[int]:
    """Epoch ms for a naive wall time, by cron-parser's rules: a time skipped by a DST gap fires
    after the gap (fold 0), unless the gap swallowed midnight; a repeated time fires at its first
    occurrence only, or at both when the pattern fires every hour."""
    if not _exists(wall, tzinfo) and not _exists(wall.replace(hour=0, minute=0, second=0), tzinfo):
        return set()
    if _repeated(wall.replace(hour=0, minute=0, second=0), tzinfo):
        folds: tuple[int, ...] = (1,)  # a day that starts in a repeated hour starts at its end
    else:
        folds = (0, 1) if both_folds else (0,)
    return {int(wall.replace(tzinfo=tzinfo, fold=fold).timestamp() * 1000) for fold in folds}


def _repeated(wall: datetime, tzinfo: ZoneInfo) -> bool:
    return wall.replace(tzinfo=tzinfo, fold=0).utcoffset() != wall.replace(
        tzinfo=tzinfo, fold=1).utcoffset()


def _steady(instant_ms: int, tzinfo: ZoneInfo) -> bool:
    """True when the zone's UTC offset does not change within the margin around the instant."""
    margin_s = _DST_MARGIN.total_seconds()
    before = datetime.fromtimestamp(instant_ms / 1000 - margin_s, tz=tzinfo).utcoffset()
    after = datetime.fromtimestamp(instant_ms / 1000 + margin_s, tz=tzinfo).utcoffset()
    return before == after


def next_fire_ms(pattern: str, after_ms: int, tz: str | None = None) -> int:
    """The first fire time strictly after `after_ms` (epoch ms), as Node BullMQ computes it.

    Matching is on the zone's wall clock, so daylight-saving changes behave as cron-parser's
    (croniter alone skips or doubles runs on those days). Near a change, wall times from a
    margin before are considered too, since a repeated hour maps them to later instants.
    """
    pattern = expand(pattern)
    tzinfo = zone(tz) or ZoneInfo("UTC")
    start = _wall(after_ms, tzinfo)
    if not _steady(after_ms, tzinfo):
        start -= _DST_MARGIN
    walls = croniter(pattern, start, second_at_beginning=True)
    both_folds = _all_hours(pattern)
    best: int | None = None
    while True:
        wall = walls.get_next(datetime)
        if best is not None and (_steady(best, tzinfo) or wall - _DST_MARGIN > _wall(best, tzinfo)):
            return best  # no later wall time can map to an earlier instant
        later = [ms for ms in _instants(wall, tzinfo, both_folds) if ms > after_ms]
        if later and (best is None or min(later) < best):
            best = min(later)


def _wall(instant_ms: int, tzinfo: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant_ms / 1000, tz=tzinfo).replace(tzinfo=None)


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
        # Imported on first use: only the CLI and dashboard describe patterns.
        from cron_descriptor import Options, get_description  # noqa: PLC0415

        options = Options()
        options.verbose = False
        # cron-descriptor reads a 6-field pattern with seconds first, as Node does.
        return str(get_description(expand(pattern), options))
    except Exception:
        return pattern
