"""The pure parts of the player pages, table-driven: conditional requests, the badge's
state, the hour-by-weekday picture and its words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.player_pages.badge import render, state_of
from app.player_pages.conditional import etag_matches, http_date, is_fresh, unmodified_since
from app.player_pages.pattern import DAYS, MAX_RADIUS, pattern
from app.player_pages.queries import key_of

MODIFIED = datetime(2026, 12, 7, 18, 4, 5, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"a"', True),
        ('W/"a"', True),
        ('"b", "a"', True),
        ('"b",W/"a" ', True),
        ("*", True),
        ('"ab"', False),
        ("a", False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"a"') is matches


@pytest.mark.parametrize(
    ("header", "fresh"),
    [
        ("Mon, 07 Dec 2026 18:04:05 GMT", True),  # the same second: sub-seconds are not sent
        ("Mon, 07 Dec 2026 18:04:04 GMT", False),
        ("Tue, 08 Dec 2026 00:00:00 GMT", True),
        ("yesterday", False),
        ("Mon, 07 Dec 2026 18:04:05", False),  # no zone: ignored
        ("x" * 100, False),
        (None, False),
    ],
)
def test_if_modified_since(header: str | None, fresh: bool) -> None:
    assert unmodified_since(header, MODIFIED) is fresh


def test_if_none_match_wins_over_if_modified_since() -> None:
    since = (b"if-modified-since", http_date(MODIFIED).encode())
    assert is_fresh([since], '"a"', MODIFIED)
    assert not is_fresh([since, (b"if-none-match", b'"b"')], '"a"', MODIFIED)
    assert not is_fresh([since], '"a"'), "a badge has no Last-Modified: only its ETag counts"


@pytest.mark.parametrize(
    ("playing", "streaming", "state"),
    [
        (True, True, "live"),
        (True, False, "live"),
        (False, True, "streaming"),
        (False, False, "offline"),
    ],
)
def test_badge_state_and_picture(playing: bool, streaming: bool, state: str) -> None:
    assert state_of(playing, streaming) == state
    svg = render("lichess:drnykterstein", state).decode()
    assert f"<title>lichess:drnykterstein: {state}</title>" in svg
    assert f'aria-label="lichess:drnykterstein: {state}"' in svg
    assert svg.count("<text") == 2


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("hikaru", "hikaru"),
        (" HiKaRu ", "hikaru"),
        ("LICHESS:DrNykterstein", "lichess:drnykterstein"),
        ("lichess:ab", "lichess:ab"),
        ("ab", None),
        ("chesscom:hikaru", None),
        ("fan@example.com", None),
        ("lichess:", None),
        ("a" * 100, None),
    ],
)
def test_any_text_is_a_key_or_nothing(raw: str, key: str | None) -> None:
    parsed = key_of(raw)
    assert (str(parsed) if parsed else None) == key


def test_the_picture_reads_without_colour() -> None:
    counts = {(5, 18): 8, (5, 19): 6, (5, 20): 2, (0, 9): 2, (9, 1): 5, (1, 30): 5, (2, 3): 0}
    p = pattern(counts)
    assert p.total == 18, "cells outside the week, and empty ones, are left out"
    assert len(p.cells) == 7 * 24 and len(p.dots) == 4
    biggest = max(p.dots, key=lambda d: d.r)
    assert biggest.r == MAX_RADIUS and biggest.label == "Sat 18:00-19:00 UTC: 8 games"
    smallest = min(p.dots, key=lambda d: d.r)
    assert smallest.r == pytest.approx(MAX_RADIUS * 0.5), "area grows with the count"
    assert p.summary == (
        "18 games in the last 90 days. Most often: Saturday 18:00-19:00 UTC; "
        "Saturday 19:00-20:00 UTC; Monday 09:00-10:00 UTC."
    )
    saturday = p.days[5]
    assert (saturday.day, saturday.games, saturday.busiest) == (
        "Saturday",
        16,
        "18:00-20:00 UTC",
    )
    assert p.days[3].games == 0 and p.days[3].busiest == ""
    assert [label for _, label in p.rows] == list(DAYS)


def test_an_empty_picture_says_so() -> None:
    p = pattern({})
    assert p.dots == () and p.summary == "No live games in the last 90 days."
