"""Typed models of the Chess.com Published-Data API payloads (SPEC appendix).

The models validate the types we rely on and ignore every field we do not know,
because Chess.com adds fields without notice. Optional fields may be missing.
Timestamps stay Unix seconds (as published); properties expose aware UTC datetimes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_PGN_HEADER = re.compile(r'^\[(\w+)\s+"((?:[^"\\]|\\.)*)"\]\s*$', re.MULTILINE)


def from_unix(seconds: int | None) -> datetime | None:
    """An aware UTC datetime for Unix seconds (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


class _Payload(BaseModel):
    """Base: unknown fields ignored, `@id` style aliases and field names both accepted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


# The models below mirror Chess.com's JSON field by field (names, types, defaults): their
# field lists look alike by nature, each is the contract of one endpoint.


class Profile(_Payload):
    """`/player/{username}`: the public profile of one player."""

    player_id: int
    username: str
    url: str
    id: str | None = Field(default=None, alias="@id")
    name: str | None = None
    avatar: str | None = None
    title: str | None = None
    status: str = "basic"
    location: str | None = None
    country: str | None = None
    joined: int | None = None
    last_online: int | None = None
    followers: int = 0
    is_streamer: bool = False
    twitch_url: str | None = None
    verified: bool = False
    league: str | None = None
    # Chess.com has published both ["twitch"] and [{"type": "twitch", "channel_url": ...}].
    streaming_platforms: list[Any] = Field(default_factory=list)

    @property
    def country_code(self) -> str | None:
        """`US` for `https://api.chess.com/pub/country/US`."""
        if not self.country:
            return None
        return self.country.rstrip("/").rsplit("/", 1)[-1] or None

    @property
    def joined_at(self) -> datetime | None:
        return from_unix(self.joined)

    @property
    def last_online_at(self) -> datetime | None:
        return from_unix(self.last_online)

    @property
    def is_closed(self) -> bool:
        """True for `closed` and `closed:fair_play_violations`."""
        return self.status.startswith("closed")

    @property
    def streaming_platform_names(self) -> list[str]:
        """Platform names whatever shape Chess.com used (strings or objects)."""
        names: list[str] = []
        for item in self.streaming_platforms:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict):
                name = item.get("type") or item.get("name") or item.get("platform")
                if isinstance(name, str):
                    names.append(name)
        return names


class GamePlayer(_Payload):
    """One side (`white` / `black`) of a game."""

    username: str
    rating: int | None = None
    result: str = ""
    id: str | None = Field(default=None, alias="@id")
    uuid: str | None = None


class Game(_Payload):
    """One finished game of a monthly archive."""

    url: str
    end_time: int
    time_class: str
    white: GamePlayer
    black: GamePlayer
    pgn: str = ""
    time_control: str = ""
    rated: bool = True
    uuid: str | None = None
    rules: str = "chess"
    fen: str | None = None
    tcn: str | None = None
    initial_setup: str | None = None
    eco: str | None = None
    tournament: str | None = None
    match: str | None = None
    start_time: int | None = None
    accuracies: dict[str, float] | None = None

    @property
    def event_id(self) -> str:
        """The stable identity of the game: its uuid, else its url."""
        return self.uuid or self.url

    @property
    def is_live(self) -> bool:
        """Live (bullet/blitz/rapid/...) as opposed to daily correspondence chess."""
        return self.time_class != "daily"

    @property
    def ended_at(self) -> datetime:
        return datetime.fromtimestamp(self.end_time, tz=UTC)

    @property
    def pgn_headers(self) -> dict[str, str]:
        """The PGN tag pairs, e.g. {"UTCDate": "2024.01.31", ...}."""
        return {m.group(1): m.group(2) for m in _PGN_HEADER.finditer(self.pgn)}

    @property
    def started_at_unix(self) -> int:
        """Best estimate of the start: PGN headers, else `start_time`, else `end_time`.

        Never later than `end_time`, so ordering by start stays consistent with the
        archive's ordering by end.
        """
        start = pgn_start_unix(self.pgn_headers)
        if start is not None and self.is_live:
            # A PGN whose clock cannot be this game's (a start after the end, or longer
            # ago than any game with this time control can last) is not believed:
            # a stale start would glue every later game onto one old session.
            longest = longest_live_game_seconds(self.time_control)
            if start > self.end_time or self.end_time - start > longest:
                start = None
        if start is None:
            start = self.start_time
        if start is None:
            return self.end_time
        return min(start, self.end_time)

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self.started_at_unix, tz=UTC)

    def side_of(self, username: str) -> GamePlayer | None:
        """The side played by `username` (case-insensitive), None if they did not play."""
        wanted = username.lower()
        for side in (self.white, self.black):
            if side.username.lower() == wanted:
                return side
        return None

    def opponent_of(self, username: str) -> GamePlayer | None:
        """The other side of `username`'s game, None if they did not play."""
        wanted = username.lower()
        if self.white.username.lower() == wanted:
            return self.black
        if self.black.username.lower() == wanted:
            return self.white
        return None


class Archive(_Payload):
    """`/player/{username}/games/{YYYY}/{MM}`: finished games ordered by end_time.

    One odd game (a new variant, a missing field) must not hide the others, or one bad
    record would stop a player's notifications for a month: games that do not validate
    are dropped and counted in `skipped`.
    """

    games: list[Game] = Field(default_factory=list)
    skipped: int = 0

    @model_validator(mode="before")
    @classmethod
    def _drop_invalid_games(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("games"), list):
            return data
        kept: list[Any] = []
        for raw in data["games"]:
            try:
                kept.append(Game.model_validate(raw))
            except ValidationError:
                continue
        return {**data, "games": kept, "skipped": len(data["games"]) - len(kept)}


class ArchiveIndex(_Payload):
    """`/player/{username}/games/archives`: URLs of the months with games."""

    archives: list[str] = Field(default_factory=list)


_LIVE_TIME_CONTROL = re.compile(r"(\d{1,6})(?:\+(\d{1,4}))?")
_MOVES_WITH_INCREMENT = 120  # per side: longer games are rare enough to be estimated short
_UNKNOWN_CONTROL_LONGEST = 4 * 3600


def longest_live_game_seconds(time_control: str) -> int:
    """How long a live game with `time_control` (`"180"`, `"180+2"`) can plausibly last:
    both clocks run out, with the increment on every move, plus a margin."""
    match = _LIVE_TIME_CONTROL.fullmatch(time_control.strip())
    if match is None:
        return _UNKNOWN_CONTROL_LONGEST
    base, increment = int(match[1]), int(match[2] or 0)
    return 2 * (base + _MOVES_WITH_INCREMENT * increment) + 120


def pgn_start_unix(headers: dict[str, str]) -> int | None:
    """Unix seconds from `UTCDate`+`UTCTime`, else `Date`+`StartTime`; None if unusable."""
    for date_key, time_key in (("UTCDate", "UTCTime"), ("Date", "StartTime")):
        date, time = headers.get(date_key), headers.get(time_key)
        if not date or not time:
            continue
        try:
            parsed = datetime.strptime(f"{date} {time}", "%Y.%m.%d %H:%M:%S")
        except ValueError:
            continue
        return int(parsed.replace(tzinfo=UTC).timestamp())
    return None
