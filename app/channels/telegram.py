"""The Telegram channel (SPEC §11): a chat, bound by `/start <token>`, as the address.

- **Subscribing** (only with TELEGRAM_BOT_TOKEN): nothing to check but that the bot
  exists; the subscription waits for its chat (:attr:`ConfirmBy.deep_link`) and the
  subscriber is given `https://t.me/<bot>?start=<token>` (:meth:`deep_link`). The
  worker's poller (:mod:`worker.telegram`) binds the chat when the person presses Start.
- **Delivering**: the alert is rendered once per event as Telegram HTML, every outside
  string escaped; per row the unsubscribe link is signed. Each message first takes a
  send time shared by all workers (:class:`app.telegram.slots.SendSlots`: 30/s per bot,
  1/s per chat); a 429 holds every worker for its `retry_after`, a 403 (the user
  blocked the bot) ends every subscription of the chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.channels.base import (
    DELIVERED,
    Address,
    Channel,
    Confirmation,
    ConfirmBy,
    Delivery,
    Event,
    InvalidAddress,
    Result,
    Verdict,
)
from app.config import Settings
from app.models import NotificationType
from app.notifications.alerts import Alert, alert_for
from app.telegram import bot, start_token, texts
from app.telegram.client import TelegramClient, TelegramError, classify
from app.telegram.client import Verdict as Answer
from app.telegram.slots import SendSlots
from app.tokens import Purpose, TokenSigner
from app.urls import link_url

_ALERT_KINDS = frozenset({NotificationType.live_match, "stream_started"})


class TelegramUnavailable(Exception):
    """The Bot API could not tell us the bot's name (the deep link needs it)."""


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    chat_id: int
    html: str


def recipient(chat_id: int) -> str:
    """What links' tokens bind to for a chat (the subscription's `recipient`)."""
    return f"telegram:{chat_id}"


class TelegramChannel(Channel[Alert | None, TelegramMessage]):
    name = "telegram"
    columns = ("telegram_chat_id",)

    def __init__(
        self,
        settings: Settings,
        signer: TokenSigner,
        *,
        http: httpx.AsyncClient | None = None,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.signer = signer
        self._http = http
        self._own_http = http is None
        self._session_factory = session_factory
        self._engine: AsyncEngine | None = None
        self._slots: SendSlots | None = None
        self._username: str | None = None
        self._client: TelegramClient | None = None

    @property
    def client(self) -> TelegramClient:
        if self._client is None:
            if self._http is None:
                self._http = httpx.AsyncClient(trust_env=False, timeout=10.0)
            self._client = TelegramClient(
                self.settings.telegram_base, self.settings.telegram_bot_token or "", self._http
            )
        return self._client

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        """The database the send limits are kept in (a small pool of the channel's own
        unless one is given)."""
        if self._session_factory is None:
            from app.db import create_engine, create_session_factory

            self._engine = create_engine(self.settings, pool_size=2, max_overflow=2)
            self._session_factory = create_session_factory(self._engine)
        return self._session_factory

    @property
    def slots(self) -> SendSlots:
        if self._slots is None:
            self._slots = SendSlots(self.session_factory)
        return self._slots

    async def aclose(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
        if self._engine is not None:
            await self._engine.dispose()

    # -- subscribing ----------------------------------------------------------------

    async def check_address(self, given: Mapping[str, Any]) -> Address:
        if not self.settings.telegram_enabled:
            raise InvalidAddress("Telegram alerts are not offered by this site")
        # No address yet: the chat is known once the person presses Start.
        return Address("", {})

    def confirmation(self) -> Confirmation:
        return Confirmation(ConfirmBy.deep_link)

    async def bot_username(self) -> str:
        """The bot's username (getMe), asked once per process."""
        if self._username is None:
            try:
                name = await self.client.bot_username()
            except TelegramError as exc:
                raise TelegramUnavailable(str(exc)) from exc
            if not name:
                raise TelegramUnavailable("getMe gave no username")
            self._username = name
        return self._username

    async def deep_link(self, subscription_id: int) -> str:
        """`https://t.me/<bot>?start=<token>` for a pending subscription."""
        token = start_token.sign(self.settings.resolved_secret_key(), subscription_id)
        return f"https://t.me/{await self.bot_username()}?start={token}"

    # -- delivering -----------------------------------------------------------------

    def prepare(self, event: Event) -> Alert | None:
        return alert_for(event, self.settings.public_url)

    def render(self, prepared: Alert | None, delivery: Delivery) -> TelegramMessage | None:
        chat_id = delivery.target.get("telegram_chat_id")
        if prepared is None or delivery.kind not in _ALERT_KINDS or not delivery.wanted:
            return None
        if not isinstance(chat_id, int):
            return None  # never bound: nothing to send to
        token = self.signer.sign(Purpose.unsubscribe, delivery.subscription_id, recipient(chat_id))
        html = texts.alert(
            prepared.headline,
            prepared.lines,
            prepared.url,
            prepared.url_label,
            link_url(self.settings.public_url, Purpose.unsubscribe, token),
        )
        return TelegramMessage(chat_id, html)

    async def send(self, message: TelegramMessage, delivery: Delivery) -> Result:
        slot = await self.slots.take(message.chat_id)
        if not slot.taken:  # the bot or the chat is booked further ahead: wait, uncounted
            return Result(Verdict.paused, "waiting for Telegram's send limit", slot.wait)
        await asyncio.sleep(slot.wait)
        try:
            answer = await self.client.send_message(message.chat_id, message.html)
        except TelegramError as exc:
            return Result(Verdict.retry, str(exc))
        judged = classify(answer)
        if judged.verdict is Answer.delivered:
            return DELIVERED
        if judged.verdict is Answer.retry and answer.status == 429:
            wait = judged.retry_after or 1.0
            await self.slots.hold(wait)
            return Result(Verdict.paused, judged.error, wait)
        if judged.verdict is Answer.gone:
            # Blocked (or the chat is gone): every subscription of the chat ends.
            async with self.session_factory() as session, session.begin():
                await bot.stop_chat(session, message.chat_id)
            return Result(Verdict.gone, judged.error)
        verdict = Verdict.retry if judged.verdict is Answer.retry else Verdict.failed
        return Result(verdict, judged.error, judged.retry_after)
