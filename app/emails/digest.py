"""The daily digest email (issue 12): one address's sessions and streams since its
previous digest.

Its entry in the message table (:data:`app.emails.messages.MESSAGES`) takes its context
from here: every session with its games and every stream with its link, times shown in
the address's own time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.emails.chess import game_view
from app.emails.headers import external_url, header_safe
from app.notifications.payloads import Digest, Payload, StreamStarted, stream_label
from app.player_keys import PLATFORM_NAMES, Platform, PlayerKey

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
                "name": _name(s.username, s.name),
                "platform": PLATFORM_NAMES[Platform(s.platform)],
                "started": started.strftime("%H:%M %Z"),
                "games": [game_view(g, s.username) for g in games[:MAX_LISTED_GAMES]],
                "more_games": max(0, len(games) - MAX_LISTED_GAMES),
            }
        )
    streams = [_stream_view(s, zone) for s in digest.streams]
    return {"local_date": digest.local_date, "sessions": sessions, "streams": streams}


def _name(username: str, name: str | None) -> str | None:
    return name if name and name.lower() != username.lower() else None


def _stream_view(stream: StreamStarted, zone: ZoneInfo) -> dict[str, Any]:
    """One stream as the digest shows it: who, where, when, and the link to watch it
    (the player's profile when the streamer list named no usable URL)."""
    platform = Platform(stream.platform)
    profile = PlayerKey(platform, stream.username.lower()).profile_url
    started = datetime.fromtimestamp(stream.started_at, UTC).astimezone(zone)
    return {
        "username": header_safe(stream.username),
        "name": _name(stream.username, header_safe(stream.name or "")),
        "where": header_safe(stream_label(stream.stream_type)),
        "started": started.strftime("%H:%M %Z"),
        "url": external_url(stream.stream_url or "") or external_url(profile),
    }


def digest_subject(payload: Payload) -> str:
    digest = _digest(payload)
    parts = [_count(len(digest.sessions), "session")]
    if digest.streams:
        parts.append(_count(len(digest.streams), "stream"))
    return f"Your Chess.com Helper digest for {digest.local_date}: {', '.join(parts)}"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
