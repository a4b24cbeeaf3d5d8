"""A player's sessions and streams as the page and the feed show them (SPEC §12).

One record type between an event row and what a reader sees: the page's list and the
feed's entries are both built from `TimelineEntry`, so they never disagree on what a
session was, where it links, or its identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.notifications.payloads import LiveSession, load_payload
from app.player_pages.queries import SESSION_KIND, STREAM_KIND
from app.players.keys import PlayerKey
from app.urls import plain_http_url

# Entry ids are URNs derived from what identifies the event outside our database (the
# player, the kind, the event's key: a session's first game, a stream's start), so a feed
# keeps its ids across a restore, a move to another host or a change of PUBLIC_BASE_URL.
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/chesscom-helper/entry")


@dataclass(frozen=True, slots=True)
class GameLink:
    url: str | None
    time_class: str
    time_control: str
    opponent: str
    result: str | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    kind: str  # "session" or "stream"
    entry_id: str
    at: datetime
    recorded_at: datetime
    title: str
    link: str | None
    games: tuple[GameLink, ...] = ()
    platform: str | None = None  # a stream's platform (twitch, youtube, ...)

    @property
    def summary(self) -> str:
        if self.kind == "stream":
            return f"Started streaming{f' on {self.platform}' if self.platform else ''}."
        count = len(self.games)
        classes = sorted({g.time_class for g in self.games})
        what = f"{count} live game{'s' if count != 1 else ''}"
        return f"{what} ({', '.join(classes)})." if classes else "A session of live games."


def _when(value: Any) -> datetime:
    """A timestamp as the pool returns it: a datetime, or ISO text inside JSON."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def entry_id(player_key: str, kind: str, event_key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'{player_key}|{kind}|{event_key}')}"


def _session(key: PlayerKey, row: Mapping[str, Any], at: datetime) -> TimelineEntry:
    try:
        payload = load_payload(SESSION_KIND, row.get("payload") or {})
    except ValueError:
        payload = None
    games: tuple[GameLink, ...] = ()
    if isinstance(payload, LiveSession):
        games = tuple(
            GameLink(
                url=plain_http_url(g.url),
                time_class=g.time_class,
                time_control=g.time_control,
                opponent=g.side(key.username)[0],
                result=g.side(key.username)[2],
            )
            for g in payload.games
        )
    link = next((g.url for g in games if g.url), None)
    return TimelineEntry(
        kind="session",
        entry_id=entry_id(str(key), SESSION_KIND, str(row["key"])),
        at=at,
        recorded_at=_when(row["created_at"]),
        title=f"{key.username} started playing live chess",
        link=link,
        games=games,
    )


def _stream(key: PlayerKey, row: Mapping[str, Any], at: datetime) -> TimelineEntry:
    payload = row.get("payload") or {}
    # A stream_started payload (app.notifications.payloads.StreamStarted) names the live
    # stream as {"type": "twitch", "url": ...}.
    stream: Mapping[str, Any] = payload.get("stream") or {}
    if not isinstance(stream, Mapping):
        stream = {}
    platform = stream.get("type")
    return TimelineEntry(
        kind="stream",
        entry_id=entry_id(str(key), STREAM_KIND, str(row["key"])),
        at=at,
        recorded_at=_when(row["created_at"]),
        title=f"{key.username} started streaming",
        link=plain_http_url(stream.get("url")),
        platform=str(platform)[:40] if platform else None,
    )


def timeline(key: PlayerKey, rows: Sequence[Mapping[str, Any]]) -> list[TimelineEntry]:
    """The entries of event rows (sessions and streams; other kinds are left out)."""
    entries = []
    for row in rows:
        at = _when(row["occurred_at"])
        if row["kind"] == SESSION_KIND:
            entries.append(_session(key, row, at))
        elif row["kind"] == STREAM_KIND:
            entries.append(_stream(key, row, at))
    return entries
