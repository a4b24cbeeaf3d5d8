"""Pure Lichess rules (SPEC §10): one status read of one player → next state + events.

No I/O, no clock reads. The state lives in the player's `detection_state` (JSONB, this
format for Lichess players) plus the stream columns (:mod:`worker.sources.streams`).

* The first read is a baseline: a game or stream already running never alerts.
* `playing` with a game id not seen before is a game starting *now*. A live one (any
  speed but correspondence) opens a session, and emits one `session` event, when the
  player was last seen playing a live game at least `LIVE_SESSION_GAP_SECONDS` ago;
  otherwise it continues the session silently. Correspondence games never alert and
  do not count as live play.
* "Last seen playing" is the session's clock: Lichess says when a game is running,
  not when it ended. It is written at most every `MARK_SECONDS` while the player plays,
  so a sweep every 5 s does not rewrite every playing player's row every 5 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from app.lichess.payloads import UserStatus, game_url, time_class_of
from app.notifications.payloads import GameRecord

MARK_SECONDS = 30.0  # precision of "last seen playing" (a gap is 30 minutes by default)


@dataclass(frozen=True, slots=True)
class LichessState:
    baseline_done: bool = False
    game_id: str | None = None  # the last game seen being played (live or not)
    last_live_at: float | None = None  # last read that saw a live game being played
    session_event_id: str | None = None  # first game of the current/last session
    session_started_at: float | None = None
    seen_at: float | None = None  # the newest read applied (older reads are ignored)

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": "lichess",
            "baseline_done": self.baseline_done,
            "game_id": self.game_id,
            "last_live_at": self.last_live_at,
            "session_event_id": self.session_event_id,
            "session_started_at": self.session_started_at,
            "seen_at": self.seen_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> LichessState:
        data = data or {}

        def num(key: str) -> float | None:
            value = data.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            return None

        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            baseline_done=bool(data.get("baseline_done", False)),
            game_id=text("game_id"),
            last_live_at=num("last_live_at"),
            session_event_id=text("session_event_id"),
            session_started_at=num("session_started_at"),
            seen_at=num("seen_at"),
        )


@dataclass(frozen=True, slots=True)
class GameStart:
    """A session opened by a game seen starting now: one `session` event."""

    game: GameRecord
    started_at: int


@dataclass(frozen=True, slots=True)
class LichessObservation:
    state: LichessState
    session: GameStart | None
    is_playing: bool  # a live game is being played now
    current_game_url: str | None  # its watch link


def game_record(game_id: str, clock: str | None, speed: str, now: int) -> GameRecord:
    """A game seen starting, as the one game record type (no result yet)."""
    return GameRecord(
        event_id=game_id,
        url=game_url(game_id),
        end_time=now,
        start_time=now,
        time_class=time_class_of(speed),
        time_control=clock or "",
        in_progress=True,
    )


def observe_lichess(
    state: LichessState, status: UserStatus | None, *, now: float, gap_seconds: float
) -> LichessObservation:
    """Apply one status read (None: the player was not in the answer, e.g. a closed
    account) and return what to store and the session to announce, if any."""
    game = None if status is None else status.game
    live = game is not None and game.speed != "correspondence"
    playing_url = game_url(game.id) if game is not None and live else None
    if state.seen_at is not None and now < state.seen_at:  # an older read, applied late
        return LichessObservation(state, None, live, playing_url)
    next_state = replace(state, seen_at=now, baseline_done=True)
    session: GameStart | None = None
    if game is not None and game.id != state.game_id:
        next_state = replace(next_state, game_id=game.id)
        last = state.last_live_at
        if live and state.baseline_done and (last is None or now - last >= gap_seconds):
            record = game_record(game.id, game.clock, game.speed, int(now))
            session = GameStart(record, int(now))
            next_state = replace(next_state, session_event_id=game.id, session_started_at=now)
        elif live and not state.baseline_done:
            next_state = replace(next_state, session_event_id=game.id, session_started_at=now)
    if live and (
        session is not None
        or state.last_live_at is None
        or now - state.last_live_at >= MARK_SECONDS
        or (game is not None and game.id != state.game_id)
    ):
        next_state = replace(next_state, last_live_at=now)
    return LichessObservation(next_state, session, live, playing_url)


def needs_write(before: LichessState, after: LichessState) -> bool:
    """Whether a read changed anything worth a write (`seen_at` alone is not)."""
    return replace(before, seen_at=None) != replace(after, seen_at=None)
