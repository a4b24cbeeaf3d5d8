"""The JSON events posted to `json` webhooks: a contract, documented in the OpenAPI
document's ``webhooks`` section and signed per Standard Webhooks (SPEC §9).

The envelope follows the Standard Webhooks recommendation: ``type``, ``timestamp``
(when the thing happened, the same on every attempt) and ``data``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LIVE_MATCH_TYPE = "live_match.started"
STREAM_TYPE = "stream.started"
VERIFICATION_TYPE = "subscription.verification"
MANAGE_LINK_TYPE = "subscription.manage_link"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventPlayer(_Model):
    username: str = Field(
        examples=["hikaru"], description="The username on its platform, lower-case"
    )
    name: str | None = Field(default=None, examples=["Hikaru Nakamura"])
    profile_url: str = Field(
        examples=["https://www.chess.com/member/hikaru"],
        description="The player's profile on its platform",
    )
    platform: Literal["chesscom", "lichess"] = Field(
        examples=["chesscom"], description="Where the player plays"
    )
    key: str = Field(
        examples=["hikaru", "lichess:drnykterstein"],
        description="The player key (`lichess:<name>` for Lichess): the API's name of the player",
    )


class EventGame(_Model):
    url: str = Field(
        examples=["https://www.chess.com/game/live/123456789"],
        description="The game; for a game in progress, where to watch it live",
    )
    time_class: str = Field(
        examples=["blitz"], description="bullet, blitz or rapid (and classical on Lichess)"
    )
    time_control: str = Field(
        examples=["180+2"],
        description="The platform's time control: Chess.com's raw one (`180+2`), Lichess's "
        "clock (`3+2`)",
    )
    in_progress: bool = Field(
        default=False,
        description="True for a game seen starting (Lichess): no opponent or result yet, and "
        "`end_time` is when it was seen starting",
    )
    opponent: str | None = Field(
        default=None, examples=["magnuscarlsen"], description="null while in progress"
    )
    opponent_rating: int | None = Field(default=None, examples=[3280])
    result: str | None = Field(
        default=None,
        examples=["win"],
        description="The tracked player's Chess.com result code (win, resigned, agreed...)",
    )
    outcome: Literal["win", "loss", "draw"] | None = Field(default=None, examples=["win"])
    end_time: datetime = Field(examples=["2026-11-21T20:14:55Z"])


class EventLinks(_Model):
    unsubscribe: str = Field(
        description="Opens a page that ends this subscription (one POST from its button)",
        examples=["https://helper.example.org/api/v1/unsubscribe?token=..."],
    )
    manage: str = Field(
        description="Opens this webhook's page: pause, resume, choose time classes and "
        "rated only, unsubscribe, for every player the webhook follows. The same controls "
        "over the API: `/api/v1/webhooks/me` with the link's `token` as the bearer token. "
        "The link does not expire; it stops working when the webhook is erased.",
        examples=["https://helper.example.org/manage/webhook?token=..."],
    )


class LiveMatchData(_Model):
    event_id: str = Field(
        description="The session's id: the first game's uuid", examples=["8f8f6bd0-7a2a"]
    )
    player: EventPlayer
    games: list[EventGame] = Field(description="The session's games known so far, oldest first")
    links: EventLinks


class LiveMatchEvent(_Model):
    """A tracked player started a session of live games."""

    type: Literal["live_match.started"] = "live_match.started"
    timestamp: datetime = Field(description="When the session was detected")
    data: LiveMatchData


class EventStream(_Model):
    type: str = Field(
        examples=["twitch"], description="Where the stream is: twitch, youtube, kick, lichess..."
    )
    url: str = Field(
        examples=["https://twitch.tv/gmhikaru"], description="The live stream, to watch it"
    )


class StreamData(_Model):
    event_id: str = Field(
        description="The stream's id: `stream:<platform>:<username>:<started-at>`",
        examples=["stream:chesscom:hikaru:2026-11-21T20:00:00Z"],
    )
    player: EventPlayer
    stream: EventStream
    started_at: datetime = Field(
        description="When the stream was seen going live", examples=["2026-11-21T20:00:00Z"]
    )
    links: EventLinks


class StreamStartedEvent(_Model):
    """A tracked player went live on a stream (Chess.com's streamer list, or Lichess)."""

    type: Literal["stream.started"] = "stream.started"
    timestamp: datetime = Field(description="When the stream was seen going live")
    data: StreamData


class VerificationLinks(EventLinks):
    confirm: str = Field(
        description="Opens a page whose button activates the subscription",
        examples=["https://helper.example.org/api/v1/subscriptions/confirm?token=..."],
    )


class VerificationData(_Model):
    player: EventPlayer
    links: VerificationLinks


class VerificationEvent(_Model):
    """Sent once when the subscription is made: nothing else is posted until a person
    opens ``data.links.confirm`` and presses its button."""

    type: Literal["subscription.verification"] = "subscription.verification"
    timestamp: datetime
    data: VerificationData


class ManageLinkData(_Model):
    player: EventPlayer
    links: EventLinks


class ManageLinkEvent(_Model):
    """Posted when an active webhook is subscribed again (the home page or `POST
    /subscriptions`): its manage link, for a channel whose older messages are gone.
    Nothing about the subscription changed."""

    type: Literal["subscription.manage_link"] = "subscription.manage_link"
    timestamp: datetime
    data: ManageLinkData
