"""What the bot does with a message sent to it (SPEC §11): `/start <token>` binds the
chat to the subscription the deep link was made for, `/list` lists the chat's players,
`/stop` ends every subscription of the chat, anything else gets the short help.

A bad start token (forged, cut, of another installation, expired, or already used by
another chat) gets a polite reply and binds nothing. Each update is handled in one
transaction; the reply is returned, and sent by the caller. The replies to `/start` and
`/list` end with the chat's manage link (app.telegram.links): its page pauses, filters
and unsubscribes per player, as every channel's manage link does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.telegram import start_token, texts
from app.telegram.client import Update
from app.telegram.links import chat_manage_url
from app.tokens import TokenSigner


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # start, list, stop, help (anything not understood)
    argument: str = ""


def parse_command(message: str | None) -> Command:
    """`/start abc`, `/start@our_bot abc`, `/list`, `/stop`; the rest is `help`."""
    if not message or not message.startswith("/"):
        return Command("help")
    head, _, rest = message.strip().partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    if name in ("start", "list", "stop", "help"):
        return Command(name, rest.strip())
    return Command("help")


_SUBSCRIPTION = text(
    """
SELECT s.id, s.channel, s.telegram_chat_id, s.is_active, s.player_id, s.owner_email,
       p.key AS username  -- named by its key: hikaru, lichess:drnykterstein
FROM email_subscriptions s JOIN players p ON p.player_id = s.player_id
WHERE s.id = :id FOR UPDATE OF s
"""
)
_SAME_PLAYER = text(
    """
SELECT id, is_active FROM email_subscriptions
WHERE telegram_chat_id = :chat AND player_id = :player FOR UPDATE
"""
)
_BIND = text(
    """
UPDATE email_subscriptions
SET telegram_chat_id = :chat, confirmed_at = coalesce(confirmed_at, now()), is_active = true,
    unsubscribed_at = NULL, consent_user_agent = 'telegram /start', updated_at = now(),
    owner_email = coalesce(:owner, owner_email)
WHERE id = :id
"""
)
_DROP_PENDING = text("DELETE FROM email_subscriptions WHERE id = :id AND telegram_chat_id IS NULL")
_LIST = text(
    """
SELECT p.key AS username, s.paused FROM email_subscriptions s
JOIN players p ON p.player_id = s.player_id
WHERE s.telegram_chat_id = :chat AND s.is_active AND s.confirmed_at IS NOT NULL
ORDER BY p.key
LIMIT 100
"""
)
_FIRST_OF_CHAT = text("SELECT min(id) FROM email_subscriptions WHERE telegram_chat_id = :chat")
_STOP = text(
    """
UPDATE email_subscriptions SET is_active = false, unsubscribed_at = now(), updated_at = now()
WHERE telegram_chat_id = :chat AND is_active
"""
)


@dataclass(frozen=True, slots=True)
class ManageLinks:
    """Signs a chat's manage link: the site's public URL and the key links are signed with."""

    public_url: str
    signer: TokenSigner

    def of(self, subscription_id: int, chat_id: int) -> str:
        return chat_manage_url(self.signer, self.public_url, subscription_id, chat_id)


async def handle(
    session: AsyncSession, secret_key: str, update: Update, links: ManageLinks
) -> str | None:
    """The reply to one update (None: nothing to answer, e.g. not a chat message)."""
    if update.chat_id is None:
        return None
    command = parse_command(update.text)
    if command.name == "start" and command.argument:
        return await bind(session, secret_key, update.chat_id, command.argument, links)
    if command.name == "list":
        rows = (await session.execute(_LIST, {"chat": update.chat_id})).all()
        first = await session.scalar(_FIRST_OF_CHAT, {"chat": update.chat_id})
        manage = None if first is None else links.of(first, update.chat_id)
        return texts.listing([(r.username, r.paused) for r in rows], manage)
    if command.name == "stop":
        return texts.stopped(await stop_chat(session, update.chat_id))
    return texts.HELP


async def stop_chat(session: AsyncSession, chat_id: int) -> int:
    """End every subscription of a chat (/stop, or the bot blocked); how many ended."""
    result = await session.execute(_STOP, {"chat": chat_id})
    return int(getattr(result, "rowcount", 0) or 0)


async def bind(
    session: AsyncSession, secret_key: str, chat_id: int, token: str, links: ManageLinks
) -> str:
    """`/start <token>`: the chat becomes the subscription's address (active)."""
    try:
        claims = start_token.verify(secret_key, token)
    except start_token.BadStartToken as exc:
        return texts.EXPIRED_TOKEN if "expired" in str(exc) else texts.BAD_TOKEN
    sub = (await session.execute(_SUBSCRIPTION, {"id": claims.subscription_id})).one_or_none()
    if sub is None or sub.channel != "telegram":
        return texts.GONE_SUBSCRIPTION
    if sub.telegram_chat_id is not None and sub.telegram_chat_id != chat_id:
        return texts.USED_TOKEN
    if sub.telegram_chat_id == chat_id and sub.is_active:
        return texts.already(sub.username, links.of(sub.id, chat_id))
    same = (
        await session.execute(_SAME_PLAYER, {"chat": chat_id, "player": sub.player_id})
    ).one_or_none()
    if same is not None and same.id != sub.id:
        # The chat follows this player already (perhaps stopped): that row comes back,
        # and the pending one made for this link goes.
        await session.execute(_BIND, {"id": same.id, "chat": chat_id, "owner": sub.owner_email})
        await session.execute(_DROP_PENDING, {"id": sub.id})
        manage = links.of(same.id, chat_id)
        if same.is_active:
            return texts.already(sub.username, manage)
        return texts.started(sub.username, manage)
    await session.execute(_BIND, {"id": sub.id, "chat": chat_id, "owner": sub.owner_email})
    return texts.started(sub.username, links.of(sub.id, chat_id))
