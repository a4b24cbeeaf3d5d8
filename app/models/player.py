"""Tracked players: the seed's tracked-user table plus the sources' state (SPEC §5, §6, §10).

A player is (platform, username). `player_id` is the primary key every foreign key
points at: Chess.com's own id for Chess.com players (the seed's rows keep theirs), and
for Lichess players, who have none, the next value of a descending sequence (-1, -2,
...), a range Chess.com never uses; a check constraint keeps the two apart. `key` is
the player key of SPEC §4 (`hikaru`, `lichess:drnykterstein`), computed by PostgreSQL
and unique: every lookup by a key or a username is one index probe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Double,
    Index,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin

PLATFORMS = ("chesscom", "lichess")
# The ids of players without a Chess.com id (Lichess): -1, -2, ...
LICHESS_IDS = Sequence(
    "players_lichess_id_seq", increment=-1, start=-1, maxvalue=-1, metadata=Base.metadata
)
KEY_EXPRESSION = (
    "CASE WHEN platform = 'chesscom' THEN username ELSE platform || ':' || username END"
)


class Player(TimestampMixin, Base):
    __tablename__ = "players"
    __table_args__ = (
        CheckConstraint("username = lower(username)", name="username_lower"),
        CheckConstraint("platform IN ('chesscom', 'lichess')", name="platform_known"),
        CheckConstraint("(platform = 'chesscom') = (player_id > 0)", name="platform_id_range"),
        UniqueConstraint("platform", "username"),
        # Every lookup by player key (API paths, pages, forms).
        Index("ix_players_key", "key", unique=True),
        # The scheduler's hot query: due players ordered by next poll.
        Index("ix_players_next_poll_at", "next_poll_at"),
        # The home page's most followed players (app.player_pages.queries).
        Index("ix_players_followers", text("followers DESC")),
    )

    player_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    platform: Mapped[str] = mapped_column(String(16), server_default="chesscom")
    username: Mapped[str] = mapped_column(String(50))
    key: Mapped[str] = mapped_column(String(64), Computed(KEY_EXPRESSION, persisted=True))

    # Profile fields, as Chess.com publishes them.
    name: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(500))
    avatar: Mapped[str | None] = mapped_column(String(500))
    title: Mapped[str | None] = mapped_column(String(10))
    followers: Mapped[int] = mapped_column(default=0, server_default="0")
    country: Mapped[str | None] = mapped_column(String(10))
    location: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(50))
    league: Mapped[str | None] = mapped_column(String(50))
    last_online: Mapped[datetime | None]
    joined: Mapped[datetime | None]
    is_streamer: Mapped[bool] = mapped_column(default=False, server_default="false")
    verified: Mapped[bool] = mapped_column(default=False, server_default="false")
    streaming_platforms: Mapped[list[Any]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    is_playing: Mapped[bool] = mapped_column(default=False, server_default="false")
    # Lichess: the game being played now (its watch link), else None.
    current_game_url: Mapped[str | None] = mapped_column(String(200))

    # Streams (SPEC §10; worker.sources.streams): live now, where, since when, when last
    # seen live (a stream resumed within 10 minutes is the same one), and the first read
    # (the baseline: a stream live then never alerts).
    is_streaming: Mapped[bool] = mapped_column(default=False, server_default="false")
    stream_url: Mapped[str | None] = mapped_column(String(500))
    stream_started_at: Mapped[datetime | None]
    stream_seen_at: Mapped[datetime | None]
    stream_checked_at: Mapped[datetime | None]

    tracked_since: Mapped[datetime] = mapped_column(server_default=func.now())
    last_checked_at: Mapped[datetime | None]

    # Poller state.
    profile_etag: Mapped[str | None] = mapped_column(String(200))
    profile_refreshed_at: Mapped[datetime | None]
    archive_etags: Mapped[dict[str, str]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    detection_state: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    last_polled_at: Mapped[datetime | None]
    next_poll_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Seconds between polls chosen at the last poll (activity-based; SPEC §6).
    poll_delay_seconds: Mapped[int | None]
    # When the player plays (worker.schedule.Activity, a decayed hour-of-week profile).
    activity: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    # Awaited games per second at the last plan: the claim serves the largest
    # poll_rate * age**2 first (worker.schedule.urgency).
    poll_rate: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    # End of the newest live game: is_playing holds while it is within the session gap.
    last_game_at: Mapped[datetime | None]
    failure_count: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    gone_at: Mapped[datetime | None]
