"""A Telegram chat's manage link (SPEC §11, issue 20 item 6): pause, filters, unsubscribe.

A chat has its commands (`/list`, `/stop`) and, like every channel, a manage link: the
bot's replies to `/start` and `/list` carry `TELEGRAM_MANAGE_PATH?token=…`, a token
signed for `Purpose.telegram_manage` and bound to the chat (through one of its
subscriptions). It opens the page with every subscription of that chat, and nothing
else.

Why the token has no age limit: like a webhook's (app.subscriptions.webhook_manage), the
link lives in the chat, and `/list` gives a fresh one whenever asked. It stops working
when the chat's rows are erased (the page's "erase", or an admin erasing the chat).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Unauthorized
from app.models import Channel, EmailSubscription
from app.subscriptions.me import bound_recipient
from app.subscriptions.service import erase_where
from app.tokens import Purpose, TokenSigner


class InvalidTelegramManageToken(Unauthorized):
    default_detail = "Missing or invalid Telegram manage link; send /list to the bot for a new one"


async def chat_of(
    session: AsyncSession, _settings: Settings, signer: TokenSigner, token: str
) -> str:
    """The chat (as its recipient string) a manage token is for; InvalidTelegramManageToken
    when it is forged, not a chat's manage token, or the rows it was bound to are erased."""
    chat = await bound_recipient(session, signer, Purpose.telegram_manage, token, Channel.telegram)
    if chat is None:
        raise InvalidTelegramManageToken()
    return chat


async def erase_chat(session: AsyncSession, chat_id: int) -> int:
    """Delete every subscription (and, by cascade, log) of a chat."""
    return await erase_where(session, EmailSubscription.telegram_chat_id == chat_id)
