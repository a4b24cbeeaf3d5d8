"""Player request and response models (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from app.players.keys import InvalidKey, Platform, parse_key
from app.schemas import StrictModel, with_example

# A key, or a bare name whose platform the body names; parse_key checks the rest.
_NAME_OR_KEY = r"^(?:[Ll][Ii][Cc][Hh][Ee][Ss][Ss]:)?[A-Za-z0-9_-]{2,30}$"


class TrackPlayerRequest(StrictModel):
    username: Annotated[
        str,
        StringConstraints(strip_whitespace=True, pattern=_NAME_OR_KEY, to_lower=True),
        Field(
            description="A player key (`hikaru`, `lichess:drnykterstein`), or a username "
            "on the platform given by `platform`.",
            examples=["hikaru", "lichess:drnykterstein"],
        ),
    ]
    platform: Literal["chesscom", "lichess"] | None = Field(
        default=None, description="The platform of a bare `username` (default: chesscom)."
    )

    model_config = with_example({"username": "hikaru"})

    @model_validator(mode="after")
    def _valid_key(self) -> TrackPlayerRequest:
        try:
            parse_key(self.username, self.platform)
        except InvalidKey as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def key(self) -> str:
        return parse_key(self.username, self.platform).key


class PlayerOut(BaseModel):
    """A tracked player. Never carries an email address."""

    model_config = with_example(
        {
            "player_id": 15448422,
            "platform": "chesscom",
            "key": "hikaru",
            "username": "hikaru",
            "name": "Hikaru Nakamura",
            "url": "https://www.chess.com/member/Hikaru",
            "avatar": "https://images.chesscomfiles.com/uploads/v1/user/15448422.jpeg",
            "title": "GM",
            "followers": 1200000,
            "country": "US",
            "location": "Florida",
            "status": "premium",
            "league": "Legend",
            "last_online": "2026-11-22T10:00:00Z",
            "joined": "2014-01-06T21:20:58Z",
            "is_streamer": True,
            "verified": True,
            "is_playing": False,
            "is_streaming": True,
            "stream_url": "https://twitch.tv/gmhikaru",
            "current_game_url": None,
            "streaming_platforms": [
                {"type": "twitch", "channel_url": "https://twitch.tv/gmhikaru"}
            ],
            "tracked_since": "2026-11-01T12:00:00Z",
            "last_checked_at": "2026-11-22T10:05:00Z",
            "subscriber_count": 3,
        },
        from_attributes=True,
    )

    player_id: int | None = Field(
        description="Chess.com's id of a Chess.com player; null for other platforms."
    )
    platform: Literal["chesscom", "lichess"] = "chesscom"
    key: str = Field(description="The player key: `hikaru`, `lichess:drnykterstein`.")
    username: str
    name: str | None
    url: str | None
    avatar: str | None
    title: str | None
    followers: int
    country: str | None
    location: str | None
    status: str | None
    league: str | None
    last_online: datetime | None
    joined: datetime | None
    is_streamer: bool
    verified: bool
    is_playing: bool
    is_streaming: bool = False
    stream_url: str | None = Field(default=None, description="While streaming: where.")
    current_game_url: str | None = Field(
        default=None, description="Lichess, while playing: the game's watch link."
    )
    streaming_platforms: list[Any] = Field(default_factory=list)
    tracked_since: datetime
    last_checked_at: datetime | None
    subscriber_count: int = 0

    @model_validator(mode="after")
    def _no_foreign_id(self) -> PlayerOut:
        # The primary key of a Lichess player is ours (negative), not an id to show.
        if self.platform != Platform.chesscom:
            self.player_id = None
        return self


class RefreshAccepted(BaseModel):
    model_config = with_example({"status": "accepted", "players": 12})

    status: str = Field(examples=["accepted"])
    players: int = Field(description="How many players will be refreshed")
