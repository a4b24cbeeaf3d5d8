"""Local-time arithmetic for digests and quiet hours, with zoneinfo (no I/O).

A digest is due once per local date at `digest_hour`. Across DST changes the local hour
may not exist (spring forward) or happen twice (fall back): the wall-clock time is
resolved with `fold=0` (the earlier reading), so the digest goes out exactly once that
day, at the first instant the local clock shows that hour or later.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def slot_at(local_day: date, hour: int, tz: str) -> datetime:
    """The UTC instant of `hour`:00 on `local_day` in `tz`.

    A non-existent wall time (inside a spring-forward gap) maps to the instant just
    after the gap, e.g. 02:30 Berlin on the last Sunday of March is 01:30 UTC (03:30 CEST).
    """
    zone = _zone(tz)
    wall = datetime.combine(local_day, time(hour), tzinfo=zone)
    instant = wall.astimezone(UTC)
    # A gap: the wall time read back differs; fold=0 resolved it with the pre-gap
    # offset, which already lands after the gap. Ambiguous times take the first reading.
    return instant


def next_digest_slot(after: datetime, hour: int, tz: str) -> tuple[date, datetime]:
    """The first digest slot strictly after `after`: (local date, UTC instant)."""
    zone = _zone(tz)
    local_day = after.astimezone(zone).date()
    for offset in range(3):
        day = local_day + timedelta(days=offset)
        instant = slot_at(day, hour, tz)
        if instant > after:
            return day, instant
    raise AssertionError("a digest slot always exists within three local days")


def local_date_of_slot(slot: datetime, tz: str) -> date:
    """The local date a scheduled slot belongs to."""
    return slot.astimezone(_zone(tz)).date()


def in_quiet_hours(moment: datetime, tz: str, start: time | None, end: time | None) -> bool:
    """True when the local wall time at `moment` is in [start, end) (wrapping midnight).

    The same rule runs in SQL at fan-out (`app.notifications.audience`); this is its reference.
    """
    if start is None or end is None or start == end:
        return False
    local = moment.astimezone(_zone(tz)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end
