"""The one rule for a player's next poll (worker.schedule), table-driven."""

from __future__ import annotations

import pytest

from worker.schedule import Policy, PollView, next_poll_delay

T0 = 1_767_225_600
HOUR = 3600
DAY = 86400
BASE = 300.0
POLICY = Policy(base_seconds=BASE, gap_seconds=1800)


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (PollView(last_live_end=T0), 60.0),
        (PollView(last_live_end=T0 - HOUR), BASE),
        (PollView(last_live_end=T0 - DAY), BASE),
        (PollView(last_live_end=T0 - 3 * DAY), BASE * 2),
        (PollView(last_live_end=T0 - 8 * DAY), BASE * 4),
        (PollView(last_live_end=None), BASE * 4),
        (PollView(last_live_end=T0, closed=True), float(DAY)),
        (PollView(last_live_end=T0, failures=1), BASE * 2),
        (PollView(last_live_end=None, failures=3), BASE * 8),
        (PollView(last_live_end=None, failures=10), 6 * 3600.0),
        (PollView(last_live_end=None, failures=10_000), 6 * 3600.0),
        (PollView(last_live_end=None, closed=True, failures=3), float(DAY)),
    ],
)
def test_next_poll_delay(view: PollView, expected: float) -> None:
    assert next_poll_delay(view, now=T0, policy=POLICY) == expected


@pytest.mark.parametrize(("base", "expected"), [(10.0, 10.0), (100.0, 30.0), (3000.0, 600.0)])
def test_next_poll_delay_playing_floor(base: float, expected: float) -> None:
    policy = Policy(base_seconds=base, gap_seconds=1800)
    assert next_poll_delay(PollView(last_live_end=T0), now=T0, policy=policy) == expected
