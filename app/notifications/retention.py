"""Retention (SPEC §3 NOTIFICATION_RETENTION_DAYS): sent and failed notification logs
older than the retention period go, and so do events nothing refers to any more. So do
Telegram subscriptions whose deep link was never opened once the link has expired: no
chat can bind them any more, and every anonymous request makes one (SPEC §11).

Deletes run in small batches, each its own short transaction (`SKIP LOCKED`, so a batch
never waits for delivery, and delivery never waits long for a batch). Pending rows are
never touched. The events table and whatever references it are read from the models'
metadata, so a table that starts referencing events (webhook deliveries, digests) keeps
its events alive without a change here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Table, and_, exists, func, not_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Base
from app.models.notification import FINAL_STATUSES

BATCH_SIZE = 1000
EVENTS_TABLE = "events"
UNBOUND_TELEGRAM = "unbound telegram subscriptions"

_DOOMED_LOGS = """
FROM notification_logs
WHERE status IN ('sent', 'failed', 'skipped', 'digested')
  AND created_at < now() - make_interval(days => :days)
"""

_DELETE_LOGS = text(
    f"""
WITH doomed AS (
    SELECT id {_DOOMED_LOGS}
    ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
)
DELETE FROM notification_logs n USING doomed WHERE n.id = doomed.id
"""
)
_COUNT_LOGS = text(f"SELECT count(*) {_DOOMED_LOGS}")

# A Telegram start link is valid 7 days (app.telegram.start_token.MAX_AGE_SECONDS); a
# day more, and the pending row it was made for can never be bound.
UNBOUND_TELEGRAM_DAYS = 8
_DOOMED_UNBOUND = """
FROM email_subscriptions
WHERE channel = 'telegram' AND telegram_chat_id IS NULL AND confirmed_at IS NULL
  AND created_at < now() - make_interval(days => :days)
"""
_DELETE_UNBOUND = text(
    f"""
WITH doomed AS (
    SELECT id {_DOOMED_UNBOUND}
    ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
)
DELETE FROM email_subscriptions s USING doomed WHERE s.id = doomed.id
"""
)
_COUNT_UNBOUND = text(f"SELECT count(*) {_DOOMED_UNBOUND}")


@dataclass
class PruneReport:
    deleted: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        parts = [f"{n} {table}" for table, n in self.deleted.items()]
        return f"{verb} " + (", ".join(parts) if parts else "nothing")


def _events_table() -> Table | None:
    return Base.metadata.tables.get(EVENTS_TABLE)


def _cutoff(days: int) -> ColumnElement[datetime]:
    return func.now() - func.make_interval(0, 0, 0, days)


def _unreferenced_events(
    events: Table, days: int, *, as_if_logs_pruned: bool = False
) -> ColumnElement[bool]:
    """Events older than `days` that no row of any table points at (with
    `as_if_logs_pruned`: no row other than notification logs retention deletes)."""
    clauses: list[ColumnElement[bool]] = [events.c.created_at < _cutoff(days)]
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is not events:
                continue
            referenced = exists().where(fk.parent == fk.column)
            if as_if_logs_pruned and table.name == "notification_logs":
                doomed = and_(
                    table.c.status.in_(FINAL_STATUSES), table.c.created_at < _cutoff(days)
                )
                referenced = referenced.where(not_(doomed))
            clauses.append(not_(referenced))
    return and_(*clauses)


async def _delete_events_batch(session: AsyncSession, events: Table, days: int, batch: int) -> int:
    (pk,) = events.primary_key.columns
    doomed = (
        select(pk)
        .where(_unreferenced_events(events, days))
        .order_by(pk)
        .limit(batch)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(events.delete().where(pk.in_(doomed)).returning(pk))
    return len(result.all())


async def prune(
    session_factory: async_sessionmaker[AsyncSession],
    days: int,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    stop: asyncio.Event | None = None,
) -> PruneReport:
    """Delete (or with `dry_run` count) what retention removes; logs before events,
    since deleting logs is what leaves events unreferenced."""
    report = PruneReport(dry_run=dry_run)
    events = _events_table()
    if dry_run:
        async with session_factory() as session:
            report.deleted["notification_logs"] = int(
                await session.scalar(_COUNT_LOGS, {"days": days}) or 0
            )
            if events is not None:
                unreferenced = _unreferenced_events(events, days, as_if_logs_pruned=True)
                count = select(func.count()).select_from(events).where(unreferenced)
                report.deleted[EVENTS_TABLE] = int(await session.scalar(count) or 0)
            report.deleted[UNBOUND_TELEGRAM] = int(
                await session.scalar(_COUNT_UNBOUND, {"days": UNBOUND_TELEGRAM_DAYS}) or 0
            )
        return report

    async def batches(name: str, step: Callable[[AsyncSession], Awaitable[int]]) -> None:
        total = 0
        while stop is None or not stop.is_set():
            async with session_factory() as session, session.begin():
                n = await step(session)
            total += n
            if n < batch_size:
                break
            await asyncio.sleep(0)  # let other work in between batches
        report.deleted[name] = total

    async def log_batch(session: AsyncSession) -> int:
        result = await session.execute(_DELETE_LOGS, {"days": days, "batch": batch_size})
        return int(getattr(result, "rowcount", 0) or 0)

    await batches("notification_logs", log_batch)
    if events is not None:
        evts = events

        async def event_batch(session: AsyncSession) -> int:
            return await _delete_events_batch(session, evts, days, batch_size)

        await batches(EVENTS_TABLE, event_batch)

    async def unbound_batch(session: AsyncSession) -> int:
        result = await session.execute(
            _DELETE_UNBOUND, {"days": UNBOUND_TELEGRAM_DAYS, "batch": batch_size}
        )
        return int(getattr(result, "rowcount", 0) or 0)

    await batches(UNBOUND_TELEGRAM, unbound_batch)
    return report
