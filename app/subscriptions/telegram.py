"""Telegram subscriptions (SPEC §4, §11): a subscription waiting for its chat.

A Telegram subscription has no address until the person presses Start in the bot:
each request stores a fresh pending row (no chat, not confirmed) and the answer carries
the deep link made for that row (`app.channels.telegram.TelegramChannel.deep_link`).
The worker's poller binds the chat when `/start <token>` arrives
(`app.telegram.bot.bind`), which is the opt-in. A link never opened leaves a row that
nothing is ever sent to.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Channel, EmailSubscription, Player
from app.models.subscription import DEFAULT_EVENTS, DEFAULT_TIME_CLASSES
from app.players import service as players
from app.players.platforms import Platforms
from app.subscriptions.service import Choice


async def subscribe_pending(
    session: AsyncSession,
    platforms: Platforms,
    username: str,
    choice: Choice,
    *,
    owner: str | None = None,
) -> int:
    """A new pending Telegram subscription to `username` (tracked on the fly); its id.
    `owner`: the address it belongs to (made with that address's manage token)."""
    player_id = await session.scalar(
        select(Player.player_id).where(Player.key == username.lower())
    )
    if player_id is None:
        player, _ = await players.track_player(session, platforms, username)
        player_id = player.player_id
    filters = choice.filters
    sub = EmailSubscription(
        channel=Channel.telegram,
        player_id=player_id,
        time_classes=list(filters.time_classes if filters else DEFAULT_TIME_CLASSES),
        rated_only=filters.rated_only if filters else False,
        events=list(choice.events or DEFAULT_EVENTS),
        owner_email=owner,
    )
    session.add(sub)
    await session.flush()
    return sub.id
