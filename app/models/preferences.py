"""Per-address preferences: time zone and delivery (SPEC §4, §5; issue 12).

One row per address, created when the subscriber first changes something; an address
without a row gets the defaults (UTC, immediate, no quiet hours). The digest scheduler's
hot query is "digest addresses whose next digest is due", hence `next_digest_at`.
A digest goes out at most once per address and local date: `sent_digests` holds that key.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import CheckConstraint, Index, SmallInteger, String, Time, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin

DEFAULT_TIMEZONE = "UTC"
DEFAULT_DIGEST_HOUR = 8


class SubscriberPreferences(TimestampMixin, Base):
    __tablename__ = "subscriber_preferences"
    __table_args__ = (
        CheckConstraint("delivery_mode IN ('immediate', 'digest')", name="delivery_mode_valid"),
        CheckConstraint("digest_hour BETWEEN 0 AND 23", name="digest_hour_valid"),
        CheckConstraint("(quiet_start IS NULL) = (quiet_end IS NULL)", name="quiet_hours_complete"),
        Index(
            "ix_subscriber_preferences_digest_due",
            "next_digest_at",
            postgresql_where=text("delivery_mode = 'digest'"),
        ),
    )

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    timezone: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_TIMEZONE, server_default=DEFAULT_TIMEZONE
    )
    delivery_mode: Mapped[str] = mapped_column(
        String(16), default="immediate", server_default="immediate"
    )
    digest_hour: Mapped[int] = mapped_column(
        SmallInteger, default=DEFAULT_DIGEST_HOUR, server_default=str(DEFAULT_DIGEST_HOUR)
    )
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    # When the next digest is due (UTC); set whenever mode, zone or hour change.
    next_digest_at: Mapped[datetime | None]
    last_digest_at: Mapped[datetime | None]


class SentDigest(Base):
    """One row per address and local date a digest was made for: the exactly-once key."""

    __tablename__ = "sent_digests"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    local_date: Mapped[date] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
