"""The worker's side work that holds no outbox row or player: outbox gauges and
retention. Both are best effort; an outage is for the loops to report."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.notifications.retention import prune
from worker import metrics
from worker.health import describe

log = logging.getLogger(__name__)

_OUTBOX_STATS = text(
    """
SELECT count(*) AS depth,
       count(*) FILTER (WHERE next_attempt_at <= now()) AS due,
       extract(epoch FROM now() - min(next_attempt_at) FILTER (WHERE next_attempt_at <= now()))
           AS oldest_due_age
FROM notification_logs WHERE status = 'pending'
"""
)


async def refresh_outbox_stats(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Set the outbox depth and the age of the oldest due row (one query on the partial
    index of pending rows)."""
    try:
        async with session_factory() as session:
            row = (await session.execute(_OUTBOX_STATS)).one()
    except Exception as exc:
        log.debug("outbox gauges not refreshed: %s", describe(exc))
        return
    metrics.OUTBOX_DEPTH.set(row.depth)
    metrics.OUTBOX_DUE.set(row.due)
    metrics.OUTBOX_OLDEST_DUE_AGE.set(float(row.oldest_due_age or 0.0))


async def apply_retention(
    session_factory: async_sessionmaker[AsyncSession],
    days: int,
    stop: asyncio.Event | None = None,
) -> None:
    """Prune what NOTIFICATION_RETENTION_DAYS removes; count it and say so in one line."""
    report = await prune(session_factory, days, stop=stop)
    for table, n in report.deleted.items():
        if n:
            metrics.PRUNED.labels(table).inc(n)
    if report.total:
        log.info("retention: %s", report.summary())
