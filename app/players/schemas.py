"""Player request and response models (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator

from app.player_keys import CHESSCOM_USERNAME, KEY_DESCRIPTION, KEY_PATTERN, LICHESS_USERNAME
from app.players.keys import Platform, parse_key
from app.schemas import StrictModel, with_example

_LICHESS_NAME_OR_KEY = rf"^(?:[Ll][Ii][Cc][Hh][Ee][Ss][Ss]:)?{LICHESS_USERNAME}$"


def _name(pattern: str) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, pattern=pattern, to_lower=True)


class TrackByKey(StrictModel):
    """A player key: `hikaru` (Chess.com) or `lichess:drnykterstein`."""

    username: Annotated[
        str,
        _name(KEY_PATTERN),
        Field(description=KEY_DESCRIPTION, examples=["hikaru", "lichess:drnykterstein"]),
    ]

    model_config = with_example({"username": "hikaru"})

    @property
    def key(self) -> str:
        return parse_key(self.username).key


class TrackChesscomUsername(StrictModel):
    """A bare Chess.com username with `platform: chesscom`."""

    username: Annotated[
        str, _name(f"^{CHESSCOM_USERNAME}$"), Field(description="A Chess.com username.")
    ]
    platform: Literal["chesscom"]

    model_config = with_example({"username": "hikaru", "platform": "chesscom"})

    @property
    def key(self) -> str:
        return parse_key(self.username, Platform.chesscom).key


class TrackLichessUsername(StrictModel):
    """A Lichess username (bare or as a key) with `platform: lichess`."""

    username: Annotated[
        str, _name(_LICHESS_NAME_OR_KEY), Field(description="A Lichess username.")
    ]
    platform: Literal["lichess"]

    model_config = with_example({"username": "drnykterstein", "platform": "lichess"})

    @property
    def key(self) -> str:
        return parse_key(self.username, Platform.lichess).key


class TrackPlayerRequest(RootModel[TrackByKey | TrackChesscomUsername | TrackLichessUsername]):
    """A player key, or a username with the platform it is on. Each form is a schema of
    its own, so the schema states the whole rule and nothing schema-valid is refused."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"username": "hikaru"},
                {"username": "lichess:drnykterstein"},
                {"username": "drnykterstein", "platform": "lichess"},
            ]
        }
    )

    @property
    def key(self) -> str:
        return self.root.key


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
