"""The daily digest (SPEC §4, issue 12): one email per address and local date.

Sessions and streams (SPEC §10) of a digest address are fanned out as `held` rows
(app.notifications.audience). When an address's `next_digest_at` (its `digest_hour`,
local time, zoneinfo) has come, one worker claims its preferences row (`FOR UPDATE SKIP
LOCKED`), gathers the held rows, records a `digest` event listing those sessions and
streams, queues one outbox row for it, marks the held rows `digested` and schedules the
next slot, all in one transaction. `sent_digests` (address, local date) is the
exactly-once key: several workers, a retry or a changed hour never make a second digest
for one local date. Nothing held, nothing sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import NotificationLog, NotificationType, SentDigest, SubscriberPreferences
from app.notifications.outbox import enqueue, record_event
from app.notifications.payloads import Digest, LiveSession, StreamStarted, load_payload
from app.subscriptions.schedule import local_date_of_slot, next_digest_slot
from app.tokens import email_digest

log = logging.getLogger(__name__)

MAX_SESSIONS = 200  # a digest lists at most this many events; the rest wait for the next

_HELD = text(
    """
SELECT n.id, n.subscription_id, e.kind, e.payload,
       (s.is_active AND s.confirmed_at IS NOT NULL AND NOT s.paused) AS deliverable
FROM notification_logs n
JOIN email_subscriptions s ON s.id = n.subscription_id
JOIN events e ON e.id = n.event_id
WHERE s.email = :email AND n.status = 'held'
ORDER BY e.occurred_at, n.id
LIMIT :limit
FOR UPDATE OF n
"""
)


@dataclass(frozen=True, slots=True)
class DigestRun:
    claimed: int = 0
    queued: int = 0


async def run_due_digests(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    now: datetime | None = None,
    batch: int = 100,
) -> DigestRun:
    """Make every digest that is due at `now`; returns how many addresses were due and
    how many digests were queued. Safe to run from several workers at once."""
    now = now or datetime.now(UTC)
    claimed = queued = 0
    while True:
        async with session_factory() as session, session.begin():
            due = (
                await session.scalars(
                    select(SubscriberPreferences)
                    .where(
                        SubscriberPreferences.delivery_mode == "digest",
                        SubscriberPreferences.next_digest_at <= now,
                    )
                    .order_by(SubscriberPreferences.next_digest_at)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for prefs in due:
                queued += await make_digest(session, prefs, now)
        claimed += len(due)
        if len(due) < batch:
            return DigestRun(claimed, queued)


async def make_digest(session: AsyncSession, prefs: SubscriberPreferences, now: datetime) -> int:
    """One address's digest for the slot it is due for (its row is locked by the caller);
    schedules the next slot. Returns 1 when a digest was queued."""
    assert prefs.next_digest_at is not None
    slot = prefs.next_digest_at
    local_date = local_date_of_slot(slot, prefs.timezone)
    _, prefs.next_digest_at = next_digest_slot(max(now, slot), prefs.digest_hour, prefs.timezone)
    held = (await session.execute(_HELD, {"email": prefs.email, "limit": MAX_SESSIONS})).all()
    stale = [r.id for r in held if not r.deliverable]
    listed = [r for r in held if r.deliverable]
    if stale:  # unsubscribed or paused since: their sessions are not news any more
        await _mark(session, stale, "skipped", "skipped: unsubscribed or paused before the digest")
    if not listed:
        return 0
    first = await session.scalar(
        insert(SentDigest)
        .values(email=prefs.email, local_date=local_date)
        .on_conflict_do_nothing()
        .returning(SentDigest.local_date)
    )
    if first is None:  # this local date has had its digest: these wait for the next one
        return 0
    sessions: list[LiveSession] = []
    streams: list[StreamStarted] = []
    for row in listed:
        payload = load_payload(row.kind, row.payload)
        if isinstance(payload, LiveSession):
            sessions.append(payload)
        elif isinstance(payload, StreamStarted):
            streams.append(payload)
    digest = Digest(
        local_date=local_date.isoformat(),
        timezone=prefs.timezone,
        sessions=tuple(sessions),
        streams=tuple(streams),
    )
    event_id = await record_event(
        session,
        NotificationType.digest,
        f"digest:{email_digest(prefs.email)}:{local_date.isoformat()}",
        digest,
        occurred_at=slot,
    )
    anchor = min(r.subscription_id for r in listed)
    await enqueue(session, anchor, event_id, NotificationType.digest)
    await _mark(session, [r.id for r in listed], "digested", None)
    prefs.last_digest_at = now
    log.info(
        "digest queued",
        extra={
            "local_date": local_date.isoformat(),
            "sessions": len(sessions),
            "streams": len(streams),
        },
    )
    return 1


async def _mark(session: AsyncSession, ids: list[int], status: str, note: str | None) -> None:
    await session.execute(
        update(NotificationLog)
        .where(NotificationLog.id.in_(ids))
        .values(status=status, error_message=note)
    )
