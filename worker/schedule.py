"""When to poll a player next: the one rule, pure (no I/O, no clock reads).

Both places that move a player's next turn call :func:`next_poll_delay`: the claim
(which sets the lease and the next turn in one go, so a poll that only sees 304s
writes nothing more) and the writer that records a poll's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_PLAYING_DELAY = 30.0
DAY = 86_400.0
MAX_BACKOFF = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of the schedule, from settings."""

    base_seconds: float  # POLL_INTERVAL_SECONDS
    gap_seconds: float  # LIVE_SESSION_GAP_SECONDS


@dataclass(frozen=True, slots=True)
class PollView:
    """What the schedule knows about one player."""

    last_live_end: float | None  # Unix seconds of the newest live game seen
    closed: bool = False  # closed, gone or renamed away
    failures: int = 0  # consecutive failed polls


def in_session(view: PollView, *, now: float, policy: Policy) -> bool:
    """True while the newest live game ended less than the session gap ago."""
    return view.last_live_end is not None and now - view.last_live_end < policy.gap_seconds


def next_poll_delay(view: PollView, *, now: float, policy: Policy) -> float:
    """Seconds until a player's next poll: fast while playing, slow when idle or broken.

    First rule that applies wins: closed account → 24 h; after ``failures`` consecutive
    failed polls → ``base * 2**failures`` capped at 6 h; in a session → ``base / 5`` but
    at least 30 s (and never slower than ``base``); a live game in the last 24 h →
    ``base``; in the last 7 days → ``base * 2``; older or never → ``base * 4``.
    """
    base = policy.base_seconds
    if view.closed:
        return DAY
    if view.failures > 0:
        return min(base * 2.0 ** min(view.failures, 32), MAX_BACKOFF)
    if in_session(view, now=now, policy=policy):
        return min(base, max(base / 5, MIN_PLAYING_DELAY))
    if view.last_live_end is None:
        return base * 4
    idle = now - view.last_live_end
    if idle <= DAY:
        return base
    return base * 2 if idle <= 7 * DAY else base * 4
