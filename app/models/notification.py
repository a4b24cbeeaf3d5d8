"""The notification log, which is also the transactional outbox (SPEC §5, §7).

One row per recipient of an event; what the message says is the event's payload
(``app.models.event``), stored once however many rows reference it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class NotificationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    # Subscriber preferences (issue 12): inside quiet hours a session is logged, not sent;
    # a digest subscriber's sessions wait (held) for the daily digest that lists them.
    skipped = "skipped"
    held = "held"
    digested = "digested"


# Rows whose story is over: retention may prune them.
FINAL_STATUSES = ("sent", "failed", "skipped", "digested")


class NotificationType(StrEnum):
    live_match = "live_match"
    stream_started = "stream_started"  # SPEC §10: a tracked player went live on a stream
    confirmation = "confirmation"
    erase_request = "erase_request"
    manage_link = "manage_link"
    digest = "digest"


class NotificationLog(Base):
    __tablename__ = "notification_logs"
    __table_args__ = (
        # The idempotency key: re-detecting a session never queues a second email.
        UniqueConstraint("subscription_id", "event_id", "notification_type"),
        CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'skipped', 'held', 'digested')",
            name="status_valid",
        ),
        # Delivery's hot query: pending rows that are due, oldest first. The id breaks
        # ties in the index itself: a fan-out gives 100,000 rows one next_attempt_at,
        # and a claim must not sort them all to take the first few hundred.
        Index(
            "ix_notification_logs_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_notification_logs_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("email_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    notification_type: Mapped[str] = mapped_column(
        String(32), default=NotificationType.live_match, server_default="live_match"
    )
    status: Mapped[str] = mapped_column(
        String(16), default=NotificationStatus.pending, server_default="pending", index=True
    )
    success: Mapped[bool] = mapped_column(default=False, server_default="false")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    locked_until: Mapped[datetime | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
