"""One Lichess request at a time across every process (SPEC §10), through PostgreSQL.

Lichess asks for one request at a time and a full minute's pause after a 429. Every
request, the worker's status reads and the API's profile reads alike, runs inside a
*turn*: a transaction holding the lock of the one `lichess_request_budget` row. A
process that wants a turn waits on that lock (PostgreSQL queues the waiters); the
holder waits out the spacing of `LICHESS_REQUESTS_PER_SECOND` since the previous
request began, sends, and on leaving records when the next request may begin (a
minute later after a 429). A process that dies mid-request loses its connection and
with it the lock, so nobody waits for a dead holder.

A turn is the sweep's pace (10 requests a second at most, one after the other), so it
costs as few round trips as it can: the row's other state (the worker's sweep cursor)
is read with the lock and written back with the next slot, in the same two statements.

While a 429's pause runs, a turn is refused at once (:class:`LichessPaused`) instead
of holding the lock for a minute: the worker sleeps it out, the API answers 503.

A request that timed out may still be served by Lichess after we gave up on it, for
as long as Lichess takes: it pauses every process like a 429 does (a minute), so a
slow Lichess is given time and never sees a second request in flight (which it would
answer with a 429 and a minute's pause anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.lichess.errors import (
    LichessError,
    LichessRateLimited,
    LichessTimedOut,
    LichessUnavailable,
)

RATE_LIMIT_PAUSE_SECONDS = 60.0  # Lichess: "after a 429, wait a full minute"

_LOCK = """
SELECT extract(epoch FROM next_slot_at)::float8 AS next_slot_at,
       extract(epoch FROM paused_until)::float8 AS paused_until,
       extract(epoch FROM clock_timestamp())::float8 AS now,
       sweep_cursor, extract(epoch FROM sweep_started_at)::float8 AS sweep_started
FROM lichess_request_budget WHERE id = 1 FOR UPDATE
"""
_CREATE = "INSERT INTO lichess_request_budget (id) VALUES (1) ON CONFLICT (id) DO NOTHING"
# The slot, the sweep's state as the holder left it, and a 429's pause: one statement.
_RELEASE = """
UPDATE lichess_request_budget
SET next_slot_at = to_timestamp(:at),
    sweep_cursor = CAST(:cursor AS bigint),
    sweep_started_at = to_timestamp(CAST(:started AS float8)),
    paused_until = CASE WHEN CAST(:pause AS float8) > 0
                        THEN clock_timestamp() + make_interval(secs => CAST(:pause AS float8))
                        ELSE paused_until END
WHERE id = 1
"""


class LichessPaused(LichessError):
    """Every Lichess request waits: a 429 was answered less than a minute ago."""

    retryable = True

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Lichess requests paused for {seconds:.0f}s after a 429")
        self.seconds = seconds


@dataclass(slots=True)
class Turn:
    """The holder's view of a turn: its session (the lock's transaction), the database's
    clock as the turn begins (its wait for the slot done), and the sweep's state kept on
    the same row (read with the lock; what the holder leaves here is written when the
    turn ends, whatever happened in it)."""

    session: AsyncSession
    now: float
    sweep_cursor: int | None = None  # the last player id read by the sweep (None: none)
    sweep_started: float | None = None  # when the sweep began (Unix seconds)


class LichessGate:
    """``async with gate.turn() as turn:`` around every Lichess request."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        requests_per_second: float,
        *,
        max_wait_seconds: float | None = None,
        pause_seconds: float = RATE_LIMIT_PAUSE_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.spacing = 1.0 / requests_per_second
        self.max_wait = max_wait_seconds  # the API gives up waiting for a turn (503)
        self.pause_seconds = pause_seconds

    async def _lock(self, session: AsyncSession) -> Any:
        if self.max_wait is not None:
            millis = max(1, int(self.max_wait * 1000))
            await session.execute(text(f"SET LOCAL lock_timeout = {millis}"))
        row = (await session.execute(text(_LOCK))).one_or_none()
        if row is None:  # a fresh or truncated table
            await session.execute(text(_CREATE))
            row = (await session.execute(text(_LOCK))).one()
        return row

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Turn]:
        """Hold the one turn; raises LichessPaused during a 429's pause and
        LichessUnavailable when `max_wait_seconds` passes without a turn."""
        async with self.session_factory() as session:
            await session.begin()
            try:
                row = await self._lock(session)
            except DBAPIError as exc:  # lock_timeout: the queue is longer than we wait
                await session.rollback()
                raise LichessUnavailable("no Lichess request slot in time") from exc
            now = row.now
            if row.paused_until > now:
                await session.rollback()
                raise LichessPaused(row.paused_until - now)
            wait = max(0.0, row.next_slot_at - now)
            if wait > 0:
                await asyncio.sleep(wait)
            began = now + wait
            turn = Turn(session, began, row.sweep_cursor, row.sweep_started)
            pause = False
            try:
                yield turn
            except (LichessRateLimited, LichessTimedOut):
                pause = True
                raise
            finally:
                # Recorded whatever happened (an error, a cancellation): the next request
                # keeps its distance, and a 429 or a timeout pauses everyone.
                await asyncio.shield(self._release(turn, pause))

    async def _release(self, turn: Turn, pause: bool) -> None:
        values = {
            "at": turn.now + self.spacing,
            "cursor": turn.sweep_cursor,
            "started": turn.sweep_started,
            "pause": self.pause_seconds if pause else 0.0,
        }
        await turn.session.execute(text(_RELEASE), values)
        await turn.session.commit()
