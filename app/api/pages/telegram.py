"""Telegram on the site (SPEC §11, §12; issue 20 items 2 and 6), only with a bot.

- "Follow in Telegram" on the home page and a player's page (shown only when
  TELEGRAM_BOT_TOKEN is set): the form makes a pending subscription and answers the
  bot's deep link; pressing Start there binds the chat (app.telegram.bot).
- A chat's manage page, the link in the bot's `/start` and `/list` replies: the same
  controls as an address's `/manage` for each player the chat follows (pause, resume,
  time classes, events, unsubscribe), and "erase this chat". Server-rendered with the
  site's templates, CSRF-protected forms, no script; the rules are the services'
  (app.subscriptions.me with channel `telegram`, app.subscriptions.telegram_manage).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import ChannelsDep, PlatformsDep, SessionDep, SettingsDep
from app.api.pages.site import (
    _DONE,
    CheckedForm,
    ManageVisit,
    _page,
    _text,
    add_manage_routes,
    form_events,
    form_filters,
    link_refused,
)
from app.api.ratelimit import rate_limit
from app.channels.telegram import TelegramChannel, TelegramUnavailable
from app.config import Settings
from app.errors import NotFound
from app.models import Channel
from app.models.subscription import TIME_CLASSES
from app.schemas import USERNAME_HINT, USERNAME_PATTERN
from app.subscriptions import telegram as telegram_subscriptions
from app.subscriptions import telegram_manage as manage
from app.subscriptions.me import my_subscription, subscriptions_of
from app.subscriptions.service import Choice
from app.telegram.links import chat_id_of
from app.tokens import TokenSigner
from app.urls import SUBSCRIBE_TELEGRAM_PATH, TELEGRAM_MANAGE_PATH

router = APIRouter(include_in_schema=False, dependencies=[Depends(rate_limit)])


@router.post(SUBSCRIBE_TELEGRAM_PATH, response_class=HTMLResponse)
async def subscribe_telegram(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    platforms: PlatformsDep,
    channels: ChannelsDep,
    form: CheckedForm,
) -> HTMLResponse:
    """A pending subscription, and a page with the bot's deep link (SPEC §11)."""
    username = _text(form, "username", 40)
    values: dict[str, object] = {"telegram_username": username}
    if not settings.telegram_enabled:
        return _page(
            request, settings, "error.html", 404,
            heading="Telegram is not offered here",
            message="This site runs no Telegram bot.",
            hint="Choose email, a browser notification or a webhook instead.",
        )  # fmt: skip
    if not re.fullmatch(USERNAME_PATTERN, username):
        errors = {"telegram_username": USERNAME_HINT}
        return _page(request, settings, "home.html", 422, values=values, errors=errors)
    channel = channels[TelegramChannel.name]
    assert isinstance(channel, TelegramChannel)
    choice = Choice(filters=form_filters(form), events=form_events(form) or None)
    try:
        sub_id = await telegram_subscriptions.subscribe_pending(
            session, platforms, username, choice
        )
        link = await channel.deep_link(sub_id)
    except NotFound:
        errors = {"telegram_username": f"No player named “{username}” was found."}
        return _page(request, settings, "home.html", 404, values=values, errors=errors)
    except TelegramUnavailable:
        return _page(
            request, settings, "error.html", 503,
            heading="Telegram cannot be reached",
            message="We could not reach Telegram to make your link.",
            hint="Please try again in a minute.",
        )  # fmt: skip
    # A page with the link, not a redirect: a form's CSP (form-action 'self') would
    # refuse to follow a redirect to Telegram.
    return _page(request, settings, "telegram_link.html", username=username.lower(), link=link)


@dataclass(frozen=True, slots=True)
class TelegramVisit(ManageVisit):
    """A request on a chat's manage page or one of its forms, its link verified;
    `address` is the chat as `telegram:<chat id>` (never shown)."""

    channel = Channel.telegram
    path = TELEGRAM_MANAGE_PATH
    erased = (
        "This chat has been erased",
        "We hold no subscription or delivery record for it any more, and send nothing more to it.",
    )

    async def page(
        self, *, done: str = "", error: str | None = None, status: int = 200
    ) -> HTMLResponse:
        rows = await subscriptions_of(self.session, self.address, Channel.telegram)
        return _page(
            self.request,
            self.settings,
            "telegram_manage.html",
            status,
            subscriptions=[my_subscription(sub, username) for sub, username in rows],
            query=urlencode({"token": self.token}),
            manage_path=self.path,
            about="Alert this chat about",
            notice=_DONE.get(done),
            error=error,
            time_classes=list(TIME_CLASSES),
        )

    async def erase_all(self) -> None:
        await manage.erase_chat(self.session, chat_id_of(self.address))

    @staticmethod
    async def recipient_of(
        session: AsyncSession, settings: Settings, signer: TokenSigner, token: str
    ) -> str:
        return await manage.chat_of(session, settings, signer, token)

    @staticmethod
    def refused(request: Request, settings: Settings) -> HTMLResponse:
        return link_refused(
            request,
            settings,
            "This is not a manage link our Telegram bot sent, or everything about "
            "that chat has been erased.",
            "Send /list to the bot: its answer carries a fresh link.",
        )


add_manage_routes(router, TelegramVisit)
