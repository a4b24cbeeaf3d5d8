"""The notification log, which is also the transactional outbox (SPEC §5, §7)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class NotificationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class NotificationType(StrEnum):
    live_match = "live_match"
    confirmation = "confirmation"
    erase_request = "erase_request"


class NotificationLog(Base):
    __tablename__ = "notification_logs"
    __table_args__ = (
        # The idempotency key: re-detecting a session never queues a second email.
        UniqueConstraint("subscription_id", "event_id", "notification_type"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_valid"),
        # Delivery's hot query: pending rows that are due.
        Index(
            "ix_notification_logs_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_notification_logs_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("email_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(300))
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
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
