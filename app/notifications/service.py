"""Notification-log queries for the admin API (SPEC §4). Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import EmailSubscription, Event, NotificationLog, Player
from app.schemas import canonical_email


@dataclass(frozen=True, slots=True)
class LogFilter:
    username: str | None = None
    email: str | None = None
    status: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class LogRow:
    log: NotificationLog
    email: str | None
    webhook_url: str | None
    username: str
    event_key: str  # the event's own id (a game uuid), reported as the log's event_id


async def list_logs(
    session: AsyncSession, wanted: LogFilter, *, limit: int, offset: int
) -> tuple[list[LogRow], int]:
    """One page of log rows, newest first, with the total that match the filter."""
    base = (
        select(
            NotificationLog,
            EmailSubscription.email,
            EmailSubscription.webhook_url,
            Player.username,
            Event.key,
        )
        .join(EmailSubscription, EmailSubscription.id == NotificationLog.subscription_id)
        .join(Player, Player.player_id == EmailSubscription.player_id)
        .join(Event, Event.id == NotificationLog.event_id)
    )
    if wanted.username:
        base = base.where(Player.key == wanted.username.lower())
    if wanted.email:
        try:
            address = canonical_email(wanted.email)
        except ValueError:  # a form we never store: nothing can match
            address = wanted.email.lower()
        base = base.where(EmailSubscription.email == address)
    if wanted.status:
        base = base.where(NotificationLog.status == wanted.status)
    if wanted.since:
        base = base.where(NotificationLog.created_at >= wanted.since)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await session.execute(
        base.order_by(NotificationLog.created_at.desc(), NotificationLog.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [LogRow(*row) for row in rows.all()], total
