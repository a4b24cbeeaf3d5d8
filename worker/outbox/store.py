"""The outbox's SQL (SPEC §7): claim, renew, record, release. Nothing here knows a channel.

Every statement after the claim touches only rows whose lease (``locked_until``) is
still the one we hold, so only the lease holder records a send: a row whose lease ran
out may have been claimed by another worker, which then owns it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.channels.base import Delivery


@dataclass(slots=True)
class ClaimedRow:
    """A leased outbox row: what the pipeline needs, and the channel's :class:`Delivery`."""

    id: int
    event_id: int
    channel: str
    locked_until: datetime  # the lease we hold: proof the row is still ours
    delivery: Delivery
    claimed_at: float = field(default_factory=time.monotonic)
    lost: bool = False  # a renewal found the lease gone: another worker owns the row
    probe: bool = False  # claimed to find out whether its channel's server is back

    @property
    def subscription_id(self) -> int:
        return self.delivery.subscription_id

    @property
    def notification_type(self) -> str:
        return self.delivery.kind

    @property
    def attempts(self) -> int:
        return self.delivery.attempts


@dataclass(frozen=True, slots=True)
class Outcome:
    """What becomes of a row: one element of a recorded batch."""

    row: ClaimedRow
    sent: bool
    final: bool = False  # not sent and never will be: status 'failed'
    error: str | None = None
    delay: float = 0.0  # before the next attempt when neither sent nor final
    postponed: bool = False  # not sent at all (server down, host on hold): not counted
    label: str = "sent"  # the metric's outcome
    deactivate: bool = False  # the address is gone: its subscription ends


def claim_statement(columns: Sequence[str], *, scope: str = "") -> TextClause:
    """THE claim: due rows in ``next_attempt_at, id`` order (the order of the index
    ``ix_notification_logs_due``), leased and counted in one statement, with the
    subscription columns the channels read. ``scope`` narrows it to some channels."""
    extra = "".join(f", s.{c}" for c in columns if c.isidentifier())
    narrowed = (
        f"""
      AND EXISTS (SELECT 1 FROM email_subscriptions c
                  WHERE c.id = n.subscription_id AND {scope})"""
        if scope
        else ""
    )
    return text(
        f"""
WITH due AS (
    SELECT n.id FROM notification_logs n
    WHERE n.status = 'pending' AND n.next_attempt_at <= now()
      AND (n.locked_until IS NULL OR n.locked_until < now()){narrowed}
    ORDER BY n.next_attempt_at, n.id
    LIMIT :limit
    FOR UPDATE OF n SKIP LOCKED
)
UPDATE notification_logs n
SET locked_until = now() + make_interval(secs => :lease), attempts = n.attempts + 1
FROM due, email_subscriptions s
WHERE n.id = due.id AND s.id = n.subscription_id
RETURNING n.id, n.subscription_id, n.event_id, n.notification_type, n.attempts,
          s.is_active, s.confirmed_at IS NOT NULL AS confirmed, n.locked_until,
          s.channel{extra}
"""
    )


EVENTS = text(
    """
SELECT e.id, e.kind, e.key, e.payload, e.occurred_at, p.username, p.name, p.platform
FROM events e LEFT JOIN players p ON p.player_id = e.player_id
WHERE e.id = ANY(CAST(:ids AS bigint[]))
"""
)

_LEASED = "FROM unnest(CAST(:ids AS bigint[]), CAST(:leases AS timestamptz[])) AS r(id, lease)"

RENEW = text(
    f"""
UPDATE notification_logs n SET locked_until = now() + make_interval(secs => :lease)
{_LEASED}
WHERE n.id = r.id AND n.status = 'pending' AND n.locked_until = r.lease
RETURNING n.id, n.locked_until
"""
)

RECORD = text(
    """
UPDATE notification_logs n
SET status = CASE WHEN o.sent THEN 'sent' WHEN o.final THEN 'failed' ELSE 'pending' END,
    success = o.sent,
    attempts = CASE WHEN o.postponed THEN greatest(n.attempts - 1, 0) ELSE n.attempts END,
    sent_at = CASE WHEN o.sent THEN now() ELSE n.sent_at END,
    locked_until = NULL,
    error_message = o.error,
    next_attempt_at = CASE WHEN o.sent THEN n.next_attempt_at
                           ELSE now() + make_interval(secs => o.delay) END
FROM unnest(CAST(:ids AS bigint[]), CAST(:leases AS timestamptz[]), CAST(:sent AS boolean[]),
            CAST(:final AS boolean[]), CAST(:errors AS text[]), CAST(:delays AS float8[]),
            CAST(:postponed AS boolean[]))
     AS o(id, lease, sent, final, error, delay, postponed)
WHERE n.id = o.id AND n.status = 'pending' AND n.locked_until = o.lease
"""
)

RELEASE = text(
    f"""
UPDATE notification_logs n SET locked_until = NULL, attempts = greatest(n.attempts - 1, 0)
{_LEASED}
WHERE n.id = r.id AND n.status = 'pending' AND n.locked_until = r.lease
"""
)

# A channel found the address gone (a webhook's 404/410): its subscription ends.
DEACTIVATE = text(
    """
UPDATE email_subscriptions SET is_active = false, unsubscribed_at = now(), updated_at = now()
WHERE id = :subscription_id AND is_active
"""
)

_NEXT_WORK = """
SELECT extract(epoch FROM min(greatest(n.next_attempt_at,
                                        coalesce(n.locked_until, n.next_attempt_at)))
       - now())
FROM notification_logs n WHERE n.status = 'pending'{narrowed}
"""


def _not_paused() -> str:
    return "c.channel <> ALL(CAST(:paused AS text[]))"


class OutboxStore:
    """The statements, run on the worker's session factory."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        columns: Sequence[str],
        lease_seconds: float,
    ) -> None:
        self.session_factory = session_factory
        self.columns = tuple(columns)
        self.lease_seconds = lease_seconds
        self._claim = claim_statement(self.columns)
        self._claim_unpaused = claim_statement(self.columns, scope=_not_paused())
        self._claim_one_channel = claim_statement(self.columns, scope="c.channel = :only")
        self._next_work = text(_NEXT_WORK.format(narrowed=""))
        self._next_work_unpaused = text(
            _NEXT_WORK.format(
                narrowed=f"""
  AND EXISTS (SELECT 1 FROM email_subscriptions c
              WHERE c.id = n.subscription_id AND {_not_paused()})"""
            )
        )

    async def claim(
        self,
        session: AsyncSession,
        limit: int,
        *,
        paused: Collection[str] = (),
        only: str | None = None,
    ) -> list[ClaimedRow]:
        """Lease up to ``limit`` due rows, skipping the ``paused`` channels' rows (or
        only ``only``'s: the probe of a channel that is down)."""
        params: dict[str, Any] = {"limit": limit, "lease": self.lease_seconds}
        statement = self._claim
        if only is not None:
            statement, params["only"] = self._claim_one_channel, only
        elif paused:
            statement, params["paused"] = self._claim_unpaused, sorted(paused)
        result = await session.execute(statement, params)
        return [self._claimed(r) for r in result]

    def _claimed(self, r: Any) -> ClaimedRow:
        return ClaimedRow(
            id=r.id,
            event_id=r.event_id,
            channel=r.channel,
            locked_until=r.locked_until,
            delivery=Delivery(
                row_id=r.id,
                subscription_id=r.subscription_id,
                kind=r.notification_type,
                attempts=r.attempts,
                is_active=r.is_active,
                confirmed=r.confirmed,
                target={c: getattr(r, c) for c in self.columns},
            ),
        )

    async def renew(self, rows: Sequence[ClaimedRow]) -> set[int]:
        """Take the lease afresh for rows still ours (one statement); returns their
        ids and marks the others lost."""
        if not rows:
            return set()
        async with self.session_factory() as session, session.begin():
            result = await session.execute(RENEW, {**leases(rows), "lease": self.lease_seconds})
            renewed = {r.id: r.locked_until for r in result}
        now = time.monotonic()
        for row in rows:
            lease = renewed.get(row.id)
            if lease is None:
                row.lost = True
            else:
                row.locked_until, row.claimed_at = lease, now
        return set(renewed)

    async def record(
        self, outcomes: Sequence[Outcome], connection: AsyncConnection | None = None
    ) -> int:
        """Record a batch of outcomes in one statement (lease holders only); returns how
        many rows were still ours to record."""
        if not outcomes:
            return 0
        params = {
            **leases([o.row for o in outcomes]),
            "sent": [o.sent for o in outcomes],
            "final": [o.final for o in outcomes],
            "errors": [o.error for o in outcomes],
            "delays": [o.delay for o in outcomes],
            "postponed": [o.postponed for o in outcomes],
        }
        if connection is not None:
            result = await connection.execute(RECORD, params)  # one statement, autocommitted
            return int(result.rowcount)
        async with self.session_factory() as session, session.begin():
            recorded = await session.execute(RECORD, params)
            return int(getattr(recorded, "rowcount", len(outcomes)))

    async def release(self, rows: Sequence[ClaimedRow]) -> None:
        """Give rows whose send never started back at once, their attempt uncounted."""
        if rows:
            async with self.session_factory() as session, session.begin():
                await session.execute(RELEASE, leases(rows))

    async def deactivate(self, subscription_id: int) -> None:
        async with self.session_factory() as session, session.begin():
            await session.execute(DEACTIVATE, {"subscription_id": subscription_id})

    async def seconds_until_next(self, paused: Collection[str] = ()) -> float | None:
        """How long until a row (of a channel not paused) is due; None: none pending."""
        async with self.session_factory() as session:
            if paused:
                value = await session.scalar(self._next_work_unpaused, {"paused": sorted(paused)})
            else:
                value = await session.scalar(self._next_work)
        return None if value is None else max(0.0, float(value))

    @contextlib.asynccontextmanager
    async def recording_connection(self) -> AsyncIterator[AsyncConnection | None]:
        """One connection held for a batch's recording rounds, in autocommit: each round
        is then one statement and one round trip (no checkout, ping, BEGIN, COMMIT)."""
        engine = self.session_factory.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            yield None
            return
        async with engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")


def leases(rows: Sequence[ClaimedRow]) -> dict[str, Any]:
    return {"ids": [r.id for r in rows], "leases": [r.locked_until for r in rows]}
