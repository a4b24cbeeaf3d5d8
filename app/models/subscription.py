"""Email subscriptions: one row per (address, player), soft-deleted (SPEC §5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin

# Live time classes a subscription can choose from (daily games never notify, SPEC §6).
TIME_CLASSES = ("bullet", "blitz", "rapid")
DEFAULT_TIME_CLASSES = TIME_CLASSES


class EmailSubscription(TimestampMixin, Base):
    __tablename__ = "email_subscriptions"
    __table_args__ = (
        UniqueConstraint("email", "player_id"),
        # Detection fans out to the active, confirmed subscribers of one player.
        CheckConstraint(
            "cardinality(time_classes) >= 1 "
            "AND time_classes <@ ARRAY['bullet', 'blitz', 'rapid']::varchar[]",
            name="time_classes_valid",
        ),
        Index(
            "ix_email_subscriptions_deliverable",
            "player_id",
            postgresql_where=text("is_active AND confirmed_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    player_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("players.player_id", ondelete="CASCADE"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default="true")
    confirmed_at: Mapped[datetime | None]
    # Proof of consent: who confirmed, from where.
    consent_ip: Mapped[str | None] = mapped_column(String(64))
    consent_user_agent: Mapped[str | None] = mapped_column(String(500))
    confirmation_sent_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # Subscriber controls (issue 12), shared by every channel: fan-out skips a paused
    # subscription and one whose filters no game of the session passes.
    paused: Mapped[bool] = mapped_column(default=False, server_default="false")
    # Filters: a session notifies when one of its games has one of `time_classes`
    # (and is rated, with `rated_only`). Compared in SQL with the event's facts.
    time_classes: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)),
        default=lambda: list(DEFAULT_TIME_CLASSES),
        server_default=text("'{bullet,blitz,rapid}'::varchar[]"),
    )
    rated_only: Mapped[bool] = mapped_column(default=False, server_default="false")
