"""When a player plays: the hour-by-weekday picture of a player's page (SPEC §12).

Pure arithmetic, no I/O: from live-game counts per (UTC weekday, hour) of the last 90
days to the geometry of an inline SVG and its text alternative. Counts are drawn as dots
whose size grows with the count, so the picture reads without colour; each cell has a
`<title>`, and the page writes the same facts out in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CELL = 14  # px per hour cell in the SVG's own units (it scales to its box)
LEFT = 34  # room for the weekday labels
TOP = 16  # room for the hour labels
MAX_RADIUS = CELL / 2 - 1


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    r: float
    label: str  # e.g. "Sat 18:00-19:00 UTC: 5 games"


@dataclass(frozen=True, slots=True)
class DaySummary:
    day: str
    games: int
    busiest: str  # "18:00-21:00 UTC" or "" when none


@dataclass(frozen=True, slots=True)
class Pattern:
    width: int
    height: int
    dots: tuple[Dot, ...]
    total: int
    days: tuple[DaySummary, ...]
    summary: str

    @property
    def rows(self) -> tuple[tuple[int, str], ...]:
        """(y of the row's middle, weekday) for the labels."""
        return tuple((TOP + i * CELL + CELL // 2, d) for i, d in enumerate(DAYS))

    @property
    def hours(self) -> tuple[tuple[int, str], ...]:
        """(x of the column's middle, hour) every six hours, for the labels."""
        return tuple((LEFT + h * CELL + CELL // 2, f"{h:02d}") for h in range(0, 24, 6))

    @property
    def cells(self) -> tuple[tuple[int, int], ...]:
        """Top-left corners of the 168 background cells."""
        return tuple((LEFT + h * CELL, TOP + d * CELL) for d in range(7) for h in range(24))


def _hours(start: int, end: int) -> str:
    return f"{start:02d}:00-{end % 24:02d}:00 UTC" if end != 24 else f"{start:02d}:00-24:00 UTC"


def _busiest_run(hours: Mapping[int, int]) -> str:
    """The longest run of hours around the day's busiest hour in which the player played
    at least half as often as then."""
    if not hours:
        return ""
    peak_hour = max(sorted(hours), key=lambda h: hours[h])
    floor = hours[peak_hour] / 2
    start = end = peak_hour
    while start > 0 and hours.get(start - 1, 0) >= floor:
        start -= 1
    while end < 23 and hours.get(end + 1, 0) >= floor:
        end += 1
    return _hours(start, end + 1)


def _plural(n: int) -> str:
    return f"{n} game{'s' if n != 1 else ''}"


def pattern(counts: Mapping[tuple[int, int], int]) -> Pattern:
    """The picture of `counts` (live games per (weekday 0=Monday, hour 0-23), UTC)."""
    valid = {(d, h): n for (d, h), n in counts.items() if 0 <= d < 7 and 0 <= h < 24 and n > 0}
    top = max(valid.values(), default=0)
    dots = []
    for (d, h), n in sorted(valid.items()):
        # Area proportional to the count; the smallest count still a visible dot.
        r = max(1.5, MAX_RADIUS * math.sqrt(n / top))
        label = f"{DAYS[d]} {_hours(h, h + 1)}: {_plural(n)}"
        dots.append(Dot(LEFT + h * CELL + CELL / 2, TOP + d * CELL + CELL / 2, round(r, 2), label))
    days = []
    for d, name in enumerate(DAY_NAMES):
        hours = {h: n for (dd, h), n in valid.items() if dd == d}
        days.append(DaySummary(name, sum(hours.values()), _busiest_run(hours)))
    total = sum(valid.values())
    if total == 0:
        summary = "No live games in the last 90 days."
    else:
        best = sorted(valid.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        slots = "; ".join(f"{DAY_NAMES[d]} {_hours(h, h + 1)}" for (d, h), _ in best)
        summary = f"{_plural(total)} in the last 90 days. Most often: {slots}."
    return Pattern(
        LEFT + 24 * CELL + 2, TOP + 7 * CELL + 2, tuple(dots), total, tuple(days), summary
    )
