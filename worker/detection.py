"""Pure live-match detection rules (SPEC §6): no I/O, no database, no clock reads.

The poller feeds the games of one or two monthly archives plus the player's persisted
:class:`DetectionState`; :func:`detect` answers which games are new, which new live
*sessions* must notify, the next state, and whether the player is playing now.

Assumptions, stated once:

* The archive feed is treated as append-only by ``end_time``. A game whose
  ``end_time`` is older than the newest game already processed is never new, even if
  a lagging archive only shows it now: notifying about it would be late and could
  re-open a session that already notified.
* Games sharing an ``event_id`` are the same game seen twice (two archives or a
  repeated page); the first in ``(end_time, event_id)`` order is kept.
* ``start_time`` is an estimate (the archive gives it for daily games only); a live
  game opens a session when ``start_time - previous_live_end >= gap_seconds``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.notifications.payloads import GameRecord as GameRecord  # one game type, re-exported


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class DetectionState:
    """What detection remembers about one player between polls."""

    baseline_done: bool = False
    last_seen_end: int | None = None  # end_time of the newest game processed
    last_seen_ids: frozenset[str] = field(default_factory=frozenset)  # ids ending then
    last_live_end: int | None = None  # end_time of the newest live game processed
    session_event_id: str | None = None  # first game of the current/last live session
    session_started_at: int | None = None

    # Written out key by key, like worker.schedule.Activity's: each is the format of its
    # own JSONB column, and they change apart.
    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (for a JSONB column); ids sorted so equal states compare equal."""
        return {
            "baseline_done": self.baseline_done,
            "last_seen_end": self.last_seen_end,
            "last_seen_ids": sorted(self.last_seen_ids),
            "last_live_end": self.last_live_end,
            "session_event_id": self.session_event_id,
            "session_started_at": self.session_started_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> DetectionState:
        """Inverse of :meth:`to_json`; missing keys (older rows, ``None``) take defaults."""
        data = data or {}
        session = data.get("session_event_id")
        return cls(
            baseline_done=bool(data.get("baseline_done", False)),
            last_seen_end=_int_or_none(data.get("last_seen_end")),
            last_seen_ids=frozenset(str(i) for i in data.get("last_seen_ids") or ()),
            last_live_end=_int_or_none(data.get("last_live_end")),
            session_event_id=None if session is None else str(session),
            session_started_at=_int_or_none(data.get("session_started_at")),
        )


@dataclass(frozen=True, slots=True)
class NewSession:
    """A live session opened in this poll: exactly one notification per subscriber."""

    event_id: str  # first game's event id: the notification idempotency key
    games: tuple[GameRecord, ...]  # this session's games seen in this poll, by end_time
    started_at: int


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """One poll's outcome: persist ``state`` and enqueue ``new_sessions`` atomically."""

    state: DetectionState
    new_sessions: tuple[NewSession, ...]
    new_games: tuple[GameRecord, ...]  # unseen games (live and daily); empty on baseline
    is_playing: bool


def ordered_games(games: Iterable[GameRecord]) -> list[GameRecord]:
    """Sort by ``(end_time, event_id)`` and drop repeated event ids (first one wins)."""
    seen: set[str] = set()
    out: list[GameRecord] = []
    for game in sorted(games, key=lambda g: (g.end_time, g.event_id)):
        if game.event_id not in seen:
            seen.add(game.event_id)
            out.append(game)
    return out


def split_sessions(games: Iterable[GameRecord], gap_seconds: int) -> list[list[GameRecord]]:
    """Group the live games into sessions (daily games ignored), oldest first."""
    sessions: list[list[GameRecord]] = []
    for game in ordered_games(games):
        if not game.is_live:
            continue
        if sessions and game.start_time - sessions[-1][-1].end_time < gap_seconds:
            sessions[-1].append(game)
        else:
            sessions.append([game])
    return sessions


def is_playing(last_live_end: int | None, *, now: int, gap_seconds: int) -> bool:
    """True while the latest live game ended less than ``gap_seconds`` ago."""
    return last_live_end is not None and now - last_live_end < gap_seconds


def _is_new(state: DetectionState, game: GameRecord) -> bool:
    if state.last_seen_end is None or game.end_time > state.last_seen_end:
        return True
    return game.end_time == state.last_seen_end and game.event_id not in state.last_seen_ids


def detect(
    state: DetectionState, games: Iterable[GameRecord], *, now: int, gap_seconds: int
) -> DetectionResult:
    """Apply SPEC §6 to one poll's games and return the next state and what to notify.

    The first poll (``baseline_done`` false) only records history: it reports no new
    sessions and no new games, but remembers the latest live session so a game that
    continues it after the baseline does not notify. Idempotent: calling it again
    with ``result.state`` and the same games changes nothing and notifies nothing.
    """
    fresh = [g for g in ordered_games(games) if _is_new(state, g)]
    live_end, session_id = state.last_live_end, state.session_event_id
    session_start = state.session_started_at
    opened: list[list[GameRecord]] = []
    for game in fresh:
        if not game.is_live:
            continue
        if live_end is None or game.start_time - live_end >= gap_seconds:
            session_id, session_start = game.event_id, game.start_time
            opened.append([game])
        elif opened:  # continues a session opened earlier in this batch
            opened[-1].append(game)
        live_end = game.end_time if live_end is None else max(live_end, game.end_time)

    seen_end, seen_ids = state.last_seen_end, state.last_seen_ids
    if fresh:
        top = fresh[-1].end_time
        ids = frozenset(g.event_id for g in fresh if g.end_time == top)
        seen_end, seen_ids = top, (ids | seen_ids) if top == seen_end else ids
    new_state = replace(
        state,
        baseline_done=True,
        last_seen_end=seen_end,
        last_seen_ids=seen_ids,
        last_live_end=live_end,
        session_event_id=session_id,
        session_started_at=session_start,
    )
    baseline = not state.baseline_done
    sessions = tuple(NewSession(s[0].event_id, tuple(s), s[0].start_time) for s in opened)
    return DetectionResult(
        state=new_state,
        new_sessions=() if baseline else sessions,
        new_games=() if baseline else tuple(fresh),
        is_playing=is_playing(live_end, now=now, gap_seconds=gap_seconds),
    )
