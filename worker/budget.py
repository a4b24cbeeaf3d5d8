"""The request budget toward Chess.com, shared by every worker through PostgreSQL.

Before each request a worker takes the next slot from the one row of
`chesscom_request_budget` (row lock, a few milliseconds) and sends at that slot's
time. Slots are spaced by :func:`worker.schedule.slot_spacing`, so however many
workers run, no 10 s window holds more than ``CHESSCOM_REQUESTS_PER_SECOND * 10``
requests. A 429 halves the rate for everyone and holds every request back for its
``Retry-After``; the rate climbs back over a few minutes (:class:`worker.schedule.Slots`).
The database's clock is the only clock the workers share, so slots are in its time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from worker.schedule import JITTER, Slots

log = logging.getLogger(__name__)

_LOCK = """
SELECT extract(epoch FROM next_slot_at)::float8 AS next_slot_at, factor,
       extract(epoch FROM cut_at)::float8 AS cut_at,
       extract(epoch FROM clock_timestamp())::float8 AS now
FROM chesscom_request_budget WHERE id = 1 FOR UPDATE
"""
_CREATE = "INSERT INTO chesscom_request_budget (id) VALUES (1) ON CONFLICT (id) DO NOTHING"
_SAVE = """
UPDATE chesscom_request_budget
SET next_slot_at = to_timestamp(:next_slot_at), factor = :factor, cut_at = to_timestamp(:cut_at)
WHERE id = 1
"""


class RequestBudget:
    """``await budget.acquire()`` before every request; ``rate_limited`` after a 429."""

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], requests_per_second: float
    ) -> None:
        self.session_factory = session_factory
        self.rate = requests_per_second
        self.forfeited = 0  # slots missed because this process woke up too late

    async def _locked(self, session: AsyncSession) -> tuple[Slots, float]:
        row = (await session.execute(text(_LOCK))).one_or_none()
        if row is None:  # a fresh or truncated table
            await session.execute(text(_CREATE))
            row = (await session.execute(text(_LOCK))).one()
        return Slots(row.next_slot_at, row.factor, row.cut_at), row.now

    async def _save(self, session: AsyncSession, slots: Slots) -> None:
        await session.execute(
            text(_SAVE),
            {"next_slot_at": slots.next_slot_at, "factor": slots.factor, "cut_at": slots.cut_at},
        )

    async def _take(self) -> float:
        """Reserve a slot; returns how many seconds from now it starts."""
        async with self.session_factory() as session, session.begin():
            slots, now = await self._locked(session)
            slots, at = slots.take(now, rate=self.rate)
            await self._save(session, slots)
        return at - now

    async def acquire(self) -> None:
        """Wait for this process's next slot. A slot this process wakes up for too late
        (a busy event loop) is given up and a new one taken, so a late send can never
        squeeze into the next slot's window."""
        while True:
            wait = await self._take()
            deadline = time.monotonic() + max(0.0, wait)
            if wait > 0:
                await asyncio.sleep(wait)
            if time.monotonic() - deadline <= JITTER / 2:
                return
            self.forfeited += 1

    async def rate_limited(self, retry_after: float | None) -> None:
        """Chess.com said 429: slow every worker down (see Slots.rate_limited)."""
        async with self.session_factory() as session, session.begin():
            slots, now = await self._locked(session)
            slots = slots.rate_limited(now, retry_after=retry_after)
            await self._save(session, slots)
        log.info(
            "request budget cut to %.2f/s after a 429",
            self.rate * slots.rate_factor(now),
            extra={"until": datetime.fromtimestamp(slots.next_slot_at, UTC).isoformat()},
        )
