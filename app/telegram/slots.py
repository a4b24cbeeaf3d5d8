"""Telegram's send limits, kept by every worker together in PostgreSQL (SPEC §11).

Telegram allows a bot about 30 messages a second in all and one a second per chat, and
answers 429 beyond that. Every message takes a send time first, in one short
transaction: the bot's next free slot (``telegram_bot.next_slot_at``, moved on by 1/30 s)
and the chat's (``telegram_chats.next_send_at``, moved on by 1 s), both row-locked, so
two workers never take the same slot. A send time further ahead than ``horizon``
seconds is not taken: the row waits (uncounted) instead of holding a sender. A 429
moves the bot's slot past the wait it asked for, for every worker at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

PER_BOT_PER_SECOND = 30.0
PER_CHAT_PER_SECOND = 1.0
HORIZON_SECONDS = 2.0
# A message leaves a little after its send time (the commit, the request): the next
# one to the same chat keeps this much more apart, so the two do not arrive closer
# than Telegram's second.
CHAT_MARGIN_SECONDS = 0.1
# The same for the bot: 30 sends a second spaced exactly 1/30 s apart put a 31st into
# some one-second window as soon as one send leaves late (measured: 47 answers 429 in
# 3,000, each holding every worker a second). A few ms more keeps the windows at 30.
BOT_MARGIN_SECONDS = 0.002

_ENSURE = text("INSERT INTO telegram_bot (id) VALUES (1) ON CONFLICT (id) DO NOTHING")

_TAKE = text(
    """
WITH bot AS (
    SELECT greatest(next_slot_at, now()) AS at FROM telegram_bot WHERE id = 1 FOR UPDATE
), chat AS (
    SELECT next_send_at AS at FROM telegram_chats WHERE chat_id = :chat FOR UPDATE
)
SELECT greatest((SELECT at FROM bot), coalesce((SELECT at FROM chat), now())) AS at,
       extract(epoch FROM greatest((SELECT at FROM bot),
                                   coalesce((SELECT at FROM chat), now())) - now()) AS wait
"""
)

_MOVE_BOT = text(
    """
UPDATE telegram_bot SET next_slot_at = greatest(next_slot_at, now())
                                       + make_interval(secs => :spacing)
WHERE id = 1
"""
)

_MOVE_CHAT = text(
    """
INSERT INTO telegram_chats (chat_id, next_send_at)
VALUES (:chat, CAST(:at AS timestamptz) + make_interval(secs => :spacing))
ON CONFLICT (chat_id) DO UPDATE SET next_send_at = EXCLUDED.next_send_at
"""
)

_HOLD = text(
    """
UPDATE telegram_bot SET next_slot_at = greatest(next_slot_at, now() + make_interval(secs => :wait))
WHERE id = 1
"""
)


@dataclass(frozen=True, slots=True)
class Slot:
    taken: bool  # False: not taken, the row waits `wait` seconds uncounted
    wait: float  # seconds from now until the send time
    at: datetime | None = None  # the send time (the database's clock)


class SendSlots:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        per_bot: float = PER_BOT_PER_SECOND,
        per_chat: float = PER_CHAT_PER_SECOND,
        horizon: float = HORIZON_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.bot_spacing = 1.0 / per_bot + BOT_MARGIN_SECONDS
        self.chat_spacing = 1.0 / per_chat + CHAT_MARGIN_SECONDS
        self.horizon = horizon
        self._ready = False

    async def _ensure(self, session: AsyncSession) -> None:
        if not self._ready:
            await session.execute(_ENSURE)
            self._ready = True

    async def take(self, chat_id: int) -> Slot:
        """A send time for one message to ``chat_id`` (taken only within the horizon)."""
        async with self.session_factory() as session, session.begin():
            await self._ensure(session)
            row = (await session.execute(_TAKE, {"chat": chat_id})).one()
            wait = max(0.0, float(row.wait))
            if wait > self.horizon:
                return Slot(False, wait, row.at)
            await session.execute(_MOVE_BOT, {"spacing": self.bot_spacing})
            await session.execute(
                _MOVE_CHAT, {"chat": chat_id, "at": row.at, "spacing": self.chat_spacing}
            )
        return Slot(True, wait, row.at)

    async def hold(self, seconds: float) -> None:
        """After a 429: no worker sends before ``seconds`` from now."""
        async with self.session_factory() as session, session.begin():
            await self._ensure(session)
            await session.execute(_HOLD, {"wait": seconds})
