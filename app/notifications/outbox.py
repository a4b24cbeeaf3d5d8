"""The outbox: record an event once, fan it out to its audience, wake the worker.

Everything runs in the caller's transaction, so the event, its outbox rows and the
state change that caused them commit together or not at all (SPEC §7). NOTIFY is
transactional too: the worker is woken only once the rows are visible.

Fan-out is one ``INSERT … SELECT`` over the player's deliverable subscriptions: no bind
parameter and no Python object per subscriber, whatever the audience size. Who is in
the audience is said once, in :func:`audience_conditions`; features that narrow it
(filters, pause, channels) add their conditions there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.models import EmailSubscription, Event, NotificationLog, NotificationType
from app.notifications.payloads import LiveSession, NoPayload, Payload, dump_payload

OUTBOX_CHANNEL = "chesscom_helper_outbox"

_IDEMPOTENCY_KEY = ["subscription_id", "event_id", "notification_type"]


async def record_event(
    session: AsyncSession,
    kind: NotificationType,
    key: str,
    payload: Payload,
    *,
    player_id: int | None = None,
    occurred_at: datetime | None = None,
) -> int:
    """Store one thing that happened and return its id; the same (player, kind, key)
    again returns the existing event (its payload is not rewritten)."""
    facts: dict[str, Any] = {}
    if isinstance(payload, LiveSession):
        facts = {
            "time_classes": payload.time_classes,
            "rated_time_classes": payload.rated_time_classes,
        }
    stmt = (
        insert(Event)
        .values(
            kind=kind,
            key=key,
            player_id=player_id,
            payload=dump_payload(payload),
            occurred_at=occurred_at or datetime.now(UTC),
            **facts,
        )
        .on_conflict_do_update(
            index_elements=["player_id", "kind", "key"], set_={"key": insert(Event).excluded.key}
        )
        .returning(Event.id)
    )
    event_id: int = (await session.execute(stmt)).scalar_one()
    return event_id


def audience_conditions(
    event: type[Event], subscription: type[EmailSubscription]
) -> list[ColumnElement[bool]]:
    """Which subscriptions receive an event: the player's active, confirmed ones."""
    return [
        subscription.player_id == event.player_id,
        subscription.is_active.is_(True),
        subscription.confirmed_at.is_not(None),
    ]


async def fan_out(session: AsyncSession, event_id: int) -> int:
    """Queue one pending row per subscription in the event's audience, in one statement.

    A row whose idempotency key (subscription, event, type) exists is skipped, so fanning
    out the same event twice adds nothing. Returns the number of rows added.
    """
    event = aliased(Event, name="e")
    subscription = aliased(EmailSubscription, name="s")
    audience = select(subscription.id, event.id, event.kind).where(
        event.id == event_id, *audience_conditions(event, subscription)
    )
    added = (
        insert(NotificationLog)
        .from_select(_IDEMPOTENCY_KEY, audience)
        .on_conflict_do_nothing(index_elements=_IDEMPOTENCY_KEY)
        .returning(literal(1))
        .cte("added")
    )
    count = await session.scalar(select(func.count()).select_from(added)) or 0
    if count:
        await notify_worker(session)
    return count


async def enqueue(
    session: AsyncSession, subscription_id: int, event_id: int, kind: NotificationType
) -> bool:
    """Queue one row for one subscription (a confirmation or erase mail). True if added."""
    stmt = (
        insert(NotificationLog)
        .values(subscription_id=subscription_id, event_id=event_id, notification_type=kind)
        .on_conflict_do_nothing(index_elements=_IDEMPOTENCY_KEY)
        .returning(NotificationLog.id)
    )
    added = (await session.execute(stmt)).first() is not None
    if added:
        await notify_worker(session)
    return added


async def request_event(
    session: AsyncSession,
    kind: NotificationType,
    key: str,
    subscription_id: int,
    *,
    player_id: int | None = None,
) -> bool:
    """Record a one-recipient request (confirmation, erasure) and queue its mail."""
    event_id = await record_event(session, kind, key, NoPayload(), player_id=player_id)
    return await enqueue(session, subscription_id, event_id, kind)


async def notify_worker(session: AsyncSession) -> None:
    """Wake delivery when this transaction commits (NOTIFY is transactional)."""
    await session.execute(select(func.pg_notify(OUTBOX_CHANNEL, "")))
