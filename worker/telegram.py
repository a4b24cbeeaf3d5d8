"""The one `getUpdates` long-poller of the deployment (SPEC §11).

Telegram serves a bot's updates to one reader at a time (a second gets 409), so the
workers share a lease on the bot's row: whoever holds it polls, renewing it every round;
a worker that dies loses it within ``lease_seconds`` and another takes over. The offset
of the next update is stored with the lease and moved on in the same transaction that
handles the update, and only by the lease holder: an update is handled once, even when
a poller is replaced mid-round. Replies go out after the commit, within the chat's
send limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.telegram import bot
from app.telegram.client import TelegramClient, TelegramError, Update, Verdict, classify
from app.telegram.slots import SendSlots
from app.tokens import TokenSigner

log = logging.getLogger(__name__)

_ENSURE = text("INSERT INTO telegram_bot (id) VALUES (1) ON CONFLICT (id) DO NOTHING")
_ACQUIRE = text(
    """
UPDATE telegram_bot SET poller = :me, poller_until = now() + make_interval(secs => :lease)
WHERE id = 1 AND (poller IS NULL OR poller = :me OR poller_until < now())
RETURNING next_update_id
"""
)
_ADVANCE = text(
    """
UPDATE telegram_bot SET next_update_id = greatest(next_update_id, :next)
WHERE id = 1 AND poller = :me
"""
)
_RELEASE = text("UPDATE telegram_bot SET poller = NULL, poller_until = NULL WHERE poller = :me")
_SAVE_USERNAME = text("UPDATE telegram_bot SET username = :name WHERE id = 1")


class LeaseLost(Exception):
    """Another worker polls now: what this one was doing is rolled back."""


class TelegramPoller:
    def __init__(
        self,
        client: TelegramClient,
        session_factory: async_sessionmaker[AsyncSession],
        secret_key: str,
        *,
        public_url: str,
        slots: SendSlots | None = None,
        wait_seconds: int = 25,
        lease_seconds: float = 45.0,
        holder: str | None = None,
    ) -> None:
        self.client = client
        self.session_factory = session_factory
        self.secret_key = secret_key
        # The replies to /start and /list carry the chat's manage link.
        self.links = bot.ManageLinks(public_url, TokenSigner(secret_key))
        self.slots = slots or SendSlots(session_factory)
        self.wait_seconds = wait_seconds
        self.lease_seconds = max(lease_seconds, wait_seconds + 10.0)
        self.me = holder or f"{socket.gethostname()}:{os.getpid()}"[:100]
        self.handled = 0

    async def _acquire(self) -> int | None:
        """Take or renew the lease; the offset to read from, or None (another polls)."""
        async with self.session_factory() as session, session.begin():
            await session.execute(_ENSURE)
            offset = await session.scalar(_ACQUIRE, {"me": self.me, "lease": self.lease_seconds})
        return None if offset is None else int(offset)

    async def release(self) -> None:
        async with self.session_factory() as session, session.begin():
            await session.execute(_RELEASE, {"me": self.me})

    async def poll_once(self, wait: int | None = None) -> int | None:
        """One round: read the updates waiting (up to ``wait`` s for one), handle each.
        Returns how many were handled, None when another worker holds the lease."""
        offset = await self._acquire()
        if offset is None:
            return None
        if self.handled == 0 and offset == 0:
            await self._remember_username()
        updates = await self.client.get_updates(
            offset, wait=self.wait_seconds if wait is None else wait
        )
        count = 0
        for update in updates:
            reply = await self._handle(update)
            count += 1
            if reply is not None and update.chat_id is not None:
                await self._reply(update.chat_id, reply)
        self.handled += count
        return count

    async def _remember_username(self) -> None:
        with contextlib.suppress(TelegramError):
            name = await self.client.bot_username()
            async with self.session_factory() as session, session.begin():
                await session.execute(_SAVE_USERNAME, {"name": name})

    async def _handle(self, update: Update) -> str | None:
        """Handle one update and move the offset past it, in one transaction."""
        try:
            async with self.session_factory() as session, session.begin():
                reply = await bot.handle(session, self.secret_key, update, self.links)
                moved = await session.execute(
                    _ADVANCE, {"next": update.update_id + 1, "me": self.me}
                )
                if not getattr(moved, "rowcount", 0):
                    raise LeaseLost
        except LeaseLost:
            raise
        except Exception:
            # An update we cannot handle must not stop the bot: skip it, say nothing.
            log.exception("telegram update %s could not be handled", update.update_id)
            async with self.session_factory() as session, session.begin():
                await session.execute(_ADVANCE, {"next": update.update_id + 1, "me": self.me})
            return None
        return reply

    async def _reply(self, chat_id: int, html: str) -> None:
        slot = await self.slots.take(chat_id)
        await asyncio.sleep(slot.wait)
        try:
            answer = await self.client.send_message(chat_id, html)
        except TelegramError as exc:
            log.warning("telegram reply to a chat failed: %s", exc)
            return
        judged = classify(answer)
        if judged.verdict is Verdict.gone:
            async with self.session_factory() as session, session.begin():
                await bot.stop_chat(session, chat_id)
        elif judged.verdict is not Verdict.delivered:
            log.warning("telegram reply not delivered: %s", judged.error)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; another worker's lease is waited out."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    handled = await self.poll_once()
                    failures = 0
                except (TelegramError, LeaseLost) as exc:
                    failures += 1
                    log.warning("telegram polling: %s", exc)
                    handled = None
                if handled is None:
                    pause = self.lease_seconds / 3 if failures == 0 else min(60.0, 2.0**failures)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release())
