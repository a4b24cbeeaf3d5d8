"""The daily digest email (issue 12): one address's sessions since its previous digest.

Its entry in the message table (:data:`app.emails.messages.MESSAGES`) takes its context
from here: every session with its games, times shown in the address's own time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.emails.chess import game_view
from app.notifications.payloads import Digest, Payload

MAX_LISTED_GAMES = 20


def _digest(payload: Payload) -> Digest:
    if not isinstance(payload, Digest):
        raise ValueError(f"a digest event needs a digest payload, not {payload!r}")
    return payload


def digest_context(payload: Payload) -> dict[str, Any]:
    digest = _digest(payload)
    zone = ZoneInfo(digest.timezone)
    sessions = []
    for s in digest.sessions:
        games = sorted(s.games, key=lambda g: (g.end_time, g.event_id))
        started = datetime.fromtimestamp(s.started_at, UTC).astimezone(zone)
        sessions.append(
            {
                "username": s.username,
                "name": s.name if s.name and s.name.lower() != s.username.lower() else None,
                "started": started.strftime("%H:%M %Z"),
                "games": [game_view(g, s.username) for g in games[:MAX_LISTED_GAMES]],
                "more_games": max(0, len(games) - MAX_LISTED_GAMES),
            }
        )
    return {"local_date": digest.local_date, "sessions": sessions}


def digest_subject(payload: Payload) -> str:
    digest = _digest(payload)
    count = len(digest.sessions)
    noun = "session" if count == 1 else "sessions"
    return f"Your Chess.com Helper digest for {digest.local_date}: {count} {noun}"
