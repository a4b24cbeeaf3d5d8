"""Player request and response models (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.schemas import StrictModel, Username, with_example


class TrackPlayerRequest(StrictModel):
    username: Username

    model_config = with_example({"username": "hikaru"})


class PlayerOut(BaseModel):
    """A tracked player. Never carries an email address."""

    model_config = with_example(
        {
            "player_id": 15448422,
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
            "streaming_platforms": [
                {"type": "twitch", "channel_url": "https://twitch.tv/gmhikaru"}
            ],
            "tracked_since": "2026-11-01T12:00:00Z",
            "last_checked_at": "2026-11-22T10:05:00Z",
            "subscriber_count": 3,
        },
        from_attributes=True,
    )

    player_id: int
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
    streaming_platforms: list[Any] = Field(default_factory=list)
    tracked_since: datetime
    last_checked_at: datetime | None
    subscriber_count: int = 0


class RefreshAccepted(BaseModel):
    model_config = with_example({"status": "accepted", "players": 12})

    status: str = Field(examples=["accepted"])
    players: int = Field(description="How many players will be refreshed")
