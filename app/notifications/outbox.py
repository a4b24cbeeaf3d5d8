"""Enqueue outbox rows in the caller's transaction, and wake the worker with NOTIFY.

The row and the state change that caused it commit together or not at all (SPEC §7);
NOTIFY is transactional too, so the worker is woken only once the row is visible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import NotificationLog

OUTBOX_CHANNEL = "chesscom_helper_outbox"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    subscription_id: int
    event_id: str
    notification_type: str
    payload: dict[str, Any] = field(default_factory=dict)


async def enqueue(session: AsyncSession, items: Iterable[OutboxItem]) -> int:
    """Insert pending rows; a row whose idempotency key exists is skipped. Returns rows added."""
    values = [
        {
            "subscription_id": i.subscription_id,
            "event_id": i.event_id,
            "notification_type": i.notification_type,
            "payload": i.payload,
        }
        for i in items
    ]
    if not values:
        return 0
    stmt = (
        insert(NotificationLog)
        .values(values)
        .on_conflict_do_nothing(index_elements=["subscription_id", "event_id", "notification_type"])
        .returning(NotificationLog.id)
    )
    added = len((await session.execute(stmt)).all())
    if added:
        await session.execute(select(func.pg_notify(OUTBOX_CHANNEL, "")))
    return added
