"""The outbox: record an event once, fan it out to its audience, wake the worker.

Everything runs in the caller's transaction, so the event, its outbox rows and the
state change that caused them commit together or not at all (SPEC §7). NOTIFY is
transactional too: the worker is woken only once the rows are visible.

Fan-out is one ``INSERT … SELECT`` over the player's deliverable subscriptions: no bind
parameter and no Python object per subscriber, whatever the audience size. Who is in
the audience is said once, in `audience.audience_conditions`; features that narrow it
(filters, pause, channels) add their conditions there.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, and_, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.models import (
    EmailSubscription,
    Event,
    NotificationLog,
    NotificationType,
    SubscriberPreferences,
)
from app.notifications import audience
from app.notifications.payloads import LiveSession, NoPayload, Payload, dump_payload

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "chesscom_helper_outbox"

_IDEMPOTENCY_KEY = ["subscription_id", "event_id", "notification_type"]


def _event_upsert(
    kind: NotificationType,
    key: str,
    payload: Payload,
    player_id: int | None,
    occurred_at: datetime | None,
) -> Any:
    """INSERT one event, or touch the same (player, kind, key) one; RETURNING its id."""
    facts: dict[str, Any] = {}
    if isinstance(payload, LiveSession):
        facts = {
            "time_classes": payload.time_classes,
            "rated_time_classes": payload.rated_time_classes,
        }
    return (
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
    stmt = _event_upsert(kind, key, payload, player_id, occurred_at)
    event_id: int = (await session.execute(stmt)).scalar_one()
    return event_id


async def fan_out(session: AsyncSession, event_id: int, *, now: datetime | None = None) -> int:
    """Queue one row per subscription in the event's audience, in one statement.

    Each row's status follows its address's delivery preferences (`audience`):
    `pending` to send now, `held` for a daily digest, `skipped` inside quiet hours (`now`
    is the clock, the database's by default). A row whose idempotency key (subscription,
    event, type) exists is skipped, so fanning out the same event twice adds nothing.
    Returns the number of rows added.
    """
    event = aliased(Event, name="e")
    subscription = aliased(EmailSubscription, name="s")
    prefs = aliased(SubscriberPreferences, name="p")
    status = audience.delivery_status(prefs, audience.now_param(now))
    recipients = (
        select(subscription.id, event.id, event.kind, status, audience.status_note(status))
        .select_from(event)
        .join(subscription, and_(*audience.audience_conditions(event, subscription)))
        .outerjoin(prefs, prefs.email == subscription.email)
        .where(event.id == event_id)
    )
    added = (
        insert(NotificationLog)
        .from_select([*_IDEMPOTENCY_KEY, "status", "error_message"], recipients)
        .on_conflict_do_nothing(index_elements=_IDEMPOTENCY_KEY)
        .returning(NotificationLog.status)
        .cte("added")
    )
    rows = await session.execute(select(added.c.status, func.count()).group_by(added.c.status))
    counts: dict[str, int] = {status: n for status, n in rows.all()}
    if counts.get("pending"):
        await notify_worker(session)
    if counts.get("held") or counts.get("skipped"):
        log.info(
            "fan-out of event %s: %d to send, %d held for digests, %d skipped (quiet hours)",
            event_id,
            counts.get("pending", 0),
            counts.get("held", 0),
            counts.get("skipped", 0),
        )
    return sum(counts.values())


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
    """Record a one-recipient request (confirmation, erasure) and queue its mail.

    One statement (one round trip): the event, its outbox row and the NOTIFY that wakes
    delivery, the NOTIFY only when the row was added. True if added.
    """
    woken = await session.execute(
        _REQUEST_EVENT,
        {
            "kind": kind,
            "key": key,
            "player_id": player_id,
            "payload": _NO_PAYLOAD,
            "occurred_at": datetime.now(UTC),
            "subscription_id": subscription_id,
        },
    )
    return woken.first() is not None


async def request_confirmation(
    session: AsyncSession, subscription_id: int, *, player_id: int | None
) -> bool:
    """Queue a subscription's confirmation (an email's confirm link, a webhook's
    verification message): a fresh key each time, so a resend is a message of its own."""
    return await request_event(
        session,
        NotificationType.confirmation,
        f"confirm:{uuid.uuid4()}",
        subscription_id,
        player_id=player_id,
    )


def _request_event_stmt() -> Any:
    """Built once, with bind parameters (building it per request cost more CPU than
    running it): the event upsert, its one outbox row, NOTIFY if the row was added."""
    kind = bindparam("kind", type_=NotificationLog.notification_type.type)
    event = (
        insert(Event)
        .values(
            kind=kind,
            key=bindparam("key"),
            player_id=bindparam("player_id"),
            payload=bindparam("payload"),
            occurred_at=bindparam("occurred_at"),
        )
        .on_conflict_do_update(
            index_elements=["player_id", "kind", "key"], set_={"key": insert(Event).excluded.key}
        )
        .returning(Event.id)
        .cte("event")
    )
    added = (
        insert(NotificationLog)
        .from_select(
            _IDEMPOTENCY_KEY,
            select(bindparam("subscription_id", type_=BigInteger), event.c.id, kind),
            include_defaults=False,  # the server defaults: pending, 0 attempts
        )
        .on_conflict_do_nothing(index_elements=_IDEMPOTENCY_KEY)
        .returning(NotificationLog.id)
        .cte("added")
    )
    return select(func.pg_notify(OUTBOX_CHANNEL, "")).select_from(added)


_REQUEST_EVENT = _request_event_stmt()
_NO_PAYLOAD = dump_payload(NoPayload())


async def notify_worker(session: AsyncSession) -> None:
    """Wake delivery when this transaction commits (NOTIFY is transactional)."""
    await session.execute(select(func.pg_notify(OUTBOX_CHANNEL, "")))
