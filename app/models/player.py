"""Tracked players: the seed's tracked-user table plus the poller's state (SPEC §5, §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Double, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin


class Player(TimestampMixin, Base):
    __tablename__ = "players"
    __table_args__ = (
        CheckConstraint("username = lower(username)", name="username_lower"),
        # The scheduler's hot query: due players ordered by next poll.
        Index("ix_players_next_poll_at", "next_poll_at"),
        # The home page's most followed players (app.player_pages.queries).
        Index("ix_players_followers", text("followers DESC")),
    )

    player_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(50), unique=True)

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
