"""A Telegram chat's manage link (SPEC §11): what the bot's /start and /list replies carry.

The token is signed for `Purpose.telegram_manage` and bound to the chat through one of
its subscriptions (the page behind it: app.subscriptions.telegram_manage). Pure: no I/O.
"""

from __future__ import annotations

from app.tokens import Purpose, TokenSigner
from app.urls import TELEGRAM_MANAGE_PATH, manage_url

PREFIX = "telegram:"


def chat_recipient(chat_id: int) -> str:
    """What links' tokens bind to for a chat (`EmailSubscription.recipient`)."""
    return f"{PREFIX}{chat_id}"


def chat_id_of(recipient: str) -> int:
    """The chat id in a chat's recipient string (`telegram:<id>`); ValueError otherwise."""
    if not recipient.startswith(PREFIX):
        raise ValueError(f"not a Telegram chat: {recipient!r}")
    return int(recipient.removeprefix(PREFIX))


def chat_manage_url(
    signer: TokenSigner, public_url: str, subscription_id: int, chat_id: int
) -> str:
    """The chat's manage link, freshly signed."""
    token = signer.sign(Purpose.telegram_manage, subscription_id, chat_recipient(chat_id))
    return manage_url(public_url, token, path=TELEGRAM_MANAGE_PATH)
