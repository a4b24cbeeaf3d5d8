"""Subscriptions: one row per (recipient, player), soft-deleted (SPEC §5, §9, §11).

A recipient is an email address (channel `email`), a webhook URL (channel `webhook`,
with its format and, for `json`, its signing secret), a browser's push subscription
(channel `push`: its endpoint and keys) or a Telegram chat (channel `telegram`: the
chat id, unknown until the person presses Start). All live in one table so that
fan-out, filters, pause and the outbox's idempotency key are one code path.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal, get_args

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

# Live time classes a subscription can choose from (daily and correspondence games never
# notify, SPEC §6, §10): written here only. Schemas, pages, the check constraint and the
# column default derive from it (the migrations keep the SQL they were written with).
# `classical` exists on Lichess only; a subscription hears of it when it asks (SPEC §4's
# default is bullet, blitz and rapid).
TimeClass = Literal["bullet", "blitz", "rapid", "classical"]
TIME_CLASSES: tuple[TimeClass, ...] = get_args(TimeClass)
DEFAULT_TIME_CLASSES: tuple[TimeClass, ...] = ("bullet", "blitz", "rapid")
_SQL_TIME_CLASSES = ", ".join(f"'{c}'" for c in TIME_CLASSES)


# The kinds of event a subscription can ask for (SPEC §4 `events`): a session of live
# games, a stream going live. Each kind's alerts have their own notification type.
EVENTS = ("session", "stream")
DEFAULT_EVENTS = EVENTS
EVENT_NOTIFICATION_TYPES = {"session": "live_match", "stream": "stream_started"}


class Channel(StrEnum):
    email = "email"
    webhook = "webhook"
    push = "push"
    telegram = "telegram"


WEBHOOK_FORMATS = ("discord", "slack", "json", "ntfy")

# The row's columns for its channel, and no other channel's (a telegram row's chat id
# is NULL until the chat is bound with /start). ntfy is a webhook format (SPEC §11).
ONE_RECIPIENT = (
    "(channel = 'email' AND email IS NOT NULL AND webhook_url IS NULL"
    " AND webhook_format IS NULL AND webhook_secret IS NULL"
    " AND push_endpoint IS NULL AND telegram_chat_id IS NULL)"
    " OR (channel = 'webhook' AND email IS NULL AND webhook_url IS NOT NULL"
    " AND webhook_format IN ('discord', 'slack', 'json', 'ntfy')"
    " AND (webhook_format <> 'json' OR webhook_secret IS NOT NULL)"
    " AND push_endpoint IS NULL AND telegram_chat_id IS NULL)"
    " OR (channel = 'push' AND email IS NULL AND webhook_url IS NULL"
    " AND push_endpoint IS NOT NULL AND push_p256dh IS NOT NULL AND push_auth IS NOT NULL"
    " AND telegram_chat_id IS NULL)"
    " OR (channel = 'telegram' AND email IS NULL AND webhook_url IS NULL"
    " AND push_endpoint IS NULL)"
)


class EmailSubscription(TimestampMixin, Base):
    __tablename__ = "email_subscriptions"
    __table_args__ = (
        UniqueConstraint("email", "player_id"),
        UniqueConstraint("webhook_url", "player_id"),
        UniqueConstraint("push_endpoint", "player_id"),
        UniqueConstraint("telegram_chat_id", "player_id"),
        # Exactly one recipient, matching the channel; a json webhook has its secret.
        CheckConstraint(ONE_RECIPIENT, name="one_recipient"),
        # Detection fans out to the active, confirmed subscribers of one player.
        CheckConstraint(
            "cardinality(time_classes) >= 1 "
            f"AND time_classes <@ ARRAY[{_SQL_TIME_CLASSES}]::varchar[]",
            name="time_classes_valid",
        ),
        CheckConstraint(
            "cardinality(events) >= 1 AND events <@ ARRAY['session', 'stream']::varchar[]",
            name="events_valid",
        ),
        # Only a browser or a chat belongs to an address besides its own (see owner_email).
        CheckConstraint(
            "owner_email IS NULL OR channel IN ('push', 'telegram')",
            name="owner_only_push_or_telegram",
        ),
        Index(
            "ix_email_subscriptions_owner_email",
            "owner_email",
            postgresql_where=text("owner_email IS NOT NULL"),
        ),
        Index(
            "ix_email_subscriptions_deliverable",
            "player_id",
            postgresql_where=text("is_active AND confirmed_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(
        String(16), default=Channel.email, server_default=Channel.email.value
    )
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), index=True)
    webhook_format: Mapped[str | None] = mapped_column(String(16))
    webhook_secret: Mapped[str | None] = mapped_column(String(100))
    # A browser's push subscription (RFC 8030 endpoint, RFC 8291 keys, base64url).
    push_endpoint: Mapped[str | None] = mapped_column(String(2000))
    push_p256dh: Mapped[str | None] = mapped_column(String(100))
    push_auth: Mapped[str | None] = mapped_column(String(32))
    # The Telegram chat bound by `/start <token>` (None while pending).
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    # The person a push or Telegram subscription belongs to: the address whose manage
    # token made it (`POST /me/subscriptions`); erasing the address erases it too. None
    # for one made anonymously: it is the browser's or the chat's alone.
    owner_email: Mapped[str | None] = mapped_column(String(320))
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
    # A webhook's manage links signed before this no longer work (its page's "replace
    # the link"; app.subscriptions.webhook_manage). The same on every row of one webhook URL.
    manage_links_since: Mapped[datetime | None]
    # Subscriber controls (issue 12), shared by every channel: fan-out skips a paused
    # subscription and one whose filters no game of the session passes.
    paused: Mapped[bool] = mapped_column(default=False, server_default="false")
    # Filters: a session notifies when one of its games has one of `time_classes`
    # (and is rated, with `rated_only`). Compared in SQL with the event's facts.
    time_classes: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)),
        default=lambda: list(DEFAULT_TIME_CLASSES),
        server_default=text("'{" + ",".join(DEFAULT_TIME_CLASSES) + "}'::varchar[]"),
    )
    rated_only: Mapped[bool] = mapped_column(default=False, server_default="false")
    # Which kinds of event alert (EVENTS): fan-out skips a subscription whose `events`
    # lack the event's kind.
    events: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)),
        default=lambda: list(DEFAULT_EVENTS),
        server_default=text("'{session,stream}'::varchar[]"),
    )

    @property
    def recipient(self) -> str:
        """The address or URL this subscription delivers to (links' tokens bind to it)."""
        if self.email is not None:
            return self.email
        if self.webhook_url is not None:
            return self.webhook_url
        if self.push_endpoint is not None:
            return self.push_endpoint
        return "" if self.telegram_chat_id is None else f"telegram:{self.telegram_chat_id}"


Subscription = EmailSubscription
