"""Email subscriptions: one row per (address, player), soft-deleted (SPEC §5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin


class EmailSubscription(TimestampMixin, Base):
    __tablename__ = "email_subscriptions"
    __table_args__ = (
        UniqueConstraint("email", "player_id"),
        # Detection fans out to the active, confirmed subscribers of one player.
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
