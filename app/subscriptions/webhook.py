"""Webhook subscriptions (SPEC §4, §9): the same rows, confirm flow and outbox as email.

A new or returning webhook subscription is pending until someone follows the confirm
link of the verification message posted to the URL, which proves the subscriber reads
what arrives there. Subscribing an active webhook again changes nothing but posts it a
message with its manage link (app.subscriptions.webhook_manage), as `POST /me/link` mails an
address's. Posts of either kind to one URL are capped per day (like confirmation mails
per address), so the API cannot be used to spam a channel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Unprocessable
from app.models import Channel, EmailSubscription, NotificationLog, NotificationType, Player
from app.notifications.outbox import request_confirmation, request_event
from app.players import service as players
from app.players.platforms import Platforms
from app.subscriptions.me_schemas import Filters
from app.webhooks.guard import RefusedURL, Resolver, check_webhook_url, parse_target
from app.webhooks.signing import new_secret

_URL_LOCK = 0x484F4F4B  # advisory-lock namespace ("HOOK") for one webhook URL


@dataclass(frozen=True, slots=True)
class WebhookSubscribed:
    status: str  # "pending_confirmation" or "active"
    secret: str | None  # json format: the new signing secret, shown once


def _now() -> datetime:
    return datetime.now(UTC)


async def _messages_today(session: AsyncSession, url: str) -> int:
    """Messages we were asked to post to a URL in a day: verifications and manage links."""
    since = _now() - timedelta(days=1)
    return (
        await session.scalar(
            select(func.count(NotificationLog.id))
            .join(EmailSubscription, EmailSubscription.id == NotificationLog.subscription_id)
            .where(
                EmailSubscription.webhook_url == url,
                NotificationLog.notification_type.in_(
                    [NotificationType.confirmation, NotificationType.manage_link]
                ),
                NotificationLog.created_at >= since,
            )
        )
        or 0
    )


async def _queue_verification(
    session: AsyncSession, settings: Settings, sub: EmailSubscription
) -> None:
    now = _now()
    cooldown = timedelta(seconds=settings.confirmation_resend_cooldown_seconds)
    if sub.confirmation_sent_at is not None and now - sub.confirmation_sent_at < cooldown:
        return
    assert sub.webhook_url is not None
    if (
        await _messages_today(session, sub.webhook_url)
        >= settings.confirmation_emails_per_address_per_day
    ):
        return
    sub.confirmation_sent_at = now
    await session.flush()
    await request_confirmation(session, sub.id, player_id=sub.player_id)


async def queue_manage_link(
    session: AsyncSession, settings: Settings, sub: EmailSubscription
) -> bool:
    """Post the webhook its manage link (a message of its own), unless today's cap of
    posts to the URL is reached. True if queued."""
    assert sub.webhook_url is not None
    if (
        await _messages_today(session, sub.webhook_url)
        >= settings.confirmation_emails_per_address_per_day
    ):
        return False
    return await request_event(
        session,
        NotificationType.manage_link,
        f"manage:{uuid.uuid4()}",
        sub.id,
        player_id=sub.player_id,
    )


async def subscribe_webhook(
    session: AsyncSession,
    settings: Settings,
    platforms: Platforms,
    resolver: Resolver,
    *,
    url: str,
    fmt: str,
    username: str,
    filters: Filters | None = None,
) -> WebhookSubscribed:
    """Check the URL (422 when refused), track the player if needed, subscribe.

    The URL is checked first, so a refused one changes nothing.
    """
    try:
        target = await check_webhook_url(
            url,
            allow_private=settings.webhook_allow_private,
            resolver=resolver,
            within=settings.webhook_timeout_seconds,
        )
    except RefusedURL as exc:
        raise Unprocessable(f"webhook.url refused: {exc}") from exc
    player, _ = await players.track_player(session, platforms, username)
    return await subscribe_webhook_to_player(
        session, settings, url=target.url, fmt=fmt, player=player, filters=filters
    )


async def subscribe_webhook_to_player(
    session: AsyncSession,
    settings: Settings,
    *,
    url: str,
    fmt: str,
    player: Player,
    filters: Filters | None = None,
) -> WebhookSubscribed:
    """Create or renew a webhook subscription for a checked, canonical URL.

    As for email, `filters` apply to a new subscription or one awaiting confirmation;
    an active one is left as it is (asking again cannot retune someone's alerts).
    """
    # One request per URL at a time: the per-URL cap counts and enqueues in order.
    await session.execute(select(func.pg_advisory_xact_lock(_URL_LOCK, func.hashtext(url))))
    sub = await session.scalar(
        select(EmailSubscription)
        .where(
            EmailSubscription.webhook_url == url,
            EmailSubscription.player_id == player.player_id,
        )
        .with_for_update()
    )
    confirm = settings.require_email_confirmation
    if sub is not None and sub.is_active and sub.confirmed_at is not None:
        # Already active: nothing changes (its secret is not shown again), but the channel
        # gets a message with its manage link: the way back to its controls when older
        # messages are gone (capped per URL and day with the verifications).
        await queue_manage_link(session, settings, sub)
        return WebhookSubscribed("pending_confirmation" if confirm else "active", None)
    secret = new_secret() if fmt == "json" else None
    if sub is None:
        sub = EmailSubscription(
            channel=Channel.webhook,
            webhook_url=url,
            player_id=player.player_id,
        )
        session.add(sub)
    # New, pending or unsubscribed: a fresh opt-in in the format asked for now.
    if filters is not None:
        sub.time_classes, sub.rated_only = list(filters.time_classes), filters.rated_only
    sub.webhook_format = fmt
    sub.webhook_secret = secret
    sub.is_active = True
    sub.unsubscribed_at = None
    sub.confirmed_at = _now() if not confirm else None
    sub.consent_ip = sub.consent_user_agent = None
    await session.flush()
    if not confirm:
        return WebhookSubscribed("active", secret)
    await _queue_verification(session, settings, sub)
    return WebhookSubscribed("pending_confirmation", secret)


async def erase_webhook(session: AsyncSession, url: str) -> int:
    """Delete every subscription (and, by cascade, log) of a webhook URL, any spelling."""
    try:
        canonical = parse_target(url, allow_private=True).url
    except RefusedURL:
        canonical = url.strip()
    result = await session.execute(
        delete(EmailSubscription)
        .where(EmailSubscription.webhook_url.in_({canonical, url.strip()}))
        .returning(EmailSubscription.id)
    )
    return len(result.all())
