"""Events: one row per thing that happened, its payload stored once (SPEC §5).

A detected live session, a confirmation or erase request (later a digest) is one
event; the outbox rows (``notification_logs``) of all its recipients reference it.
The facts that subscription filters need are columns, so fan-out can filter in SQL
without reading the payload: the session's time classes, and those of its rated games.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # One event per (player, kind, key): re-detecting a session finds its row.
        # Its leading column also indexes the player foreign key.
        UniqueConstraint("player_id", "kind", "key"),
        # Retention prunes old events.
        Index("ix_events_created_at", "created_at"),
        # A player's timeline (page, feed: app.player_pages.queries), newest first; only
        # sessions and streams (every subscriber's confirmation names the player too).
        Index(
            "ix_events_player_timeline",
            "player_id",
            text("occurred_at DESC"),
            # A feed's conditional GET reads its window from the index alone.
            postgresql_include=["id", "created_at"],
            postgresql_where=text("kind IN ('live_match', 'stream_started')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The notification type its messages carry: live_match, confirmation, erase_request...
    kind: Mapped[str] = mapped_column(String(32))
    # The tracked player it is about (None for address-level events such as erasure).
    player_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("players.player_id", ondelete="CASCADE")
    )
    # The outside identity: a session's first game uuid (its url without one), or a
    # random id for a request.
    key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    # Filter facts of a live session: time classes of all its games / of its rated ones.
    time_classes: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)), default=list, server_default=text("'{}'::varchar[]")
    )
    rated_time_classes: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)), default=list, server_default=text("'{}'::varchar[]")
    )
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
