"""What the player page and the home page show, built from the reads (SPEC §12).

Pure: rows in, plain objects out (times written out in UTC, links checked), so the
templates only lay them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.player_pages.badge import state_of
from app.player_pages.queries import key_of
from app.player_pages.timeline import TimelineEntry
from app.players.keys import Platform, PlayerKey
from app.urls import plain_http_url

PLATFORM_NAMES = {"chesscom": "Chess.com", "lichess": "Lichess"}


def when(moment: datetime) -> str:
    """ "Mon 7 Dec 2026, 18:04 UTC"."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%a ") + str(moment.day) + moment.strftime(" %b %Y, %H:%M UTC")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class PlayerView:
    key: str
    username: str
    platform: str
    name: str | None
    title: str | None
    profile_url: str
    followers: int
    subscribers: int
    state: str  # live / streaming / offline
    watch_url: str | None
    last_seen: str | None  # "Last played live Mon 7 Dec 2026, 18:04 UTC"
    last_seen_iso: str | None

    @property
    def monogram(self) -> str:
        return self.username[:1].upper()

    @property
    def platform_name(self) -> str:
        return PLATFORM_NAMES.get(self.platform, self.platform)


def profile_url(key: PlayerKey) -> str:
    """The player's public profile on their platform."""
    if key.platform is Platform.lichess:
        return f"https://lichess.org/@/{key.username}"
    return f"https://www.chess.com/member/{key.username}"


def player_view(key: PlayerKey, row: Mapping[str, Any], state: str) -> PlayerView:
    last_game, last_online = row.get("last_game_at"), row.get("last_online")
    last_seen = last_seen_iso = None
    if last_game is not None:
        last_seen, last_seen_iso = f"Last played live {when(last_game)}", iso(last_game)
    elif last_online is not None:
        last_seen = f"Last online {when(last_online)}"
        last_seen_iso = iso(last_online)
    profile = plain_http_url(row.get("url")) or profile_url(key)
    # Where to watch: the stream, the game being played (Lichess shows it live), else the
    # profile (Chess.com's shows a game in progress; its API does not).
    watch = None
    if state == "streaming":
        watch = plain_http_url(row.get("stream_url")) or profile
    elif state == "live":
        watch = plain_http_url(row.get("current_game_url")) or profile
    return PlayerView(
        key=str(key),
        username=key.username,
        platform=key.platform,
        name=row.get("name"),
        title=row.get("title"),
        profile_url=profile,
        followers=int(row.get("followers") or 0),
        subscribers=int(row.get("subscriber_count") or 0),
        state=state,
        watch_url=watch,
        last_seen=last_seen,
        last_seen_iso=last_seen_iso,
    )


@dataclass(frozen=True, slots=True)
class EntryView:
    entry: TimelineEntry
    when: str
    iso: str


def entry_views(entries: list[TimelineEntry]) -> list[EntryView]:
    return [EntryView(e, when(e.at), iso(e.at)) for e in entries]


@dataclass(frozen=True, slots=True)
class ListedPlayer:
    """A player in one of the home page's lists."""

    key: str
    username: str
    name: str | None
    title: str | None
    followers: int
    state: str

    @property
    def path(self) -> str:
        return f"/p/{self.key}"


def listed(rows: Sequence[Mapping[str, Any]]) -> list[ListedPlayer]:
    players = []
    for row in rows:
        platform = row.get("platform") or "chesscom"
        key = key_of(row["username"] if platform == "chesscom" else f"{platform}:{row['username']}")
        if key is None:
            continue
        state = state_of(bool(row.get("is_playing")), bool(row.get("is_streaming")))
        players.append(
            ListedPlayer(
                key=str(key),
                username=key.username,
                name=row.get("name"),
                title=row.get("title"),
                followers=int(row.get("followers") or 0),
                state=state,
            )
        )
    return players
