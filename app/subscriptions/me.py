"""Subscriber self-service rules (SPEC §4 `/me`, issue 12). Services flush, never commit.

Every function takes the address a verified manage token names, and touches rows of
that address only: another address's subscription id is simply not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import InvalidToken, NotFound, Unauthorized
from app.models import (
    Channel,
    EmailSubscription,
    NotificationLog,
    NotificationType,
    Player,
)
from app.models.preferences import DEFAULT_DIGEST_HOUR, DEFAULT_TIMEZONE, SubscriberPreferences
from app.player_keys import Platform
from app.subscriptions.me_schemas import (
    Delivery,
    Me,
    MePatch,
    MySubscription,
    QuietHours,
    SubscriptionPatch,
    events_of,
    filters_of,
)
from app.subscriptions.recipients import CHANNELS
from app.subscriptions.schedule import next_digest_slot
from app.subscriptions.service import request_message
from app.subscriptions.service import unsubscribe as unsubscribe_one
from app.telegram.links import chat_id_of, chat_recipient
from app.tokens import Purpose, TokenSigner, email_digest


class InvalidManageToken(Unauthorized):
    default_detail = "Missing, invalid or expired manage token; ask for a new link"


def _now() -> datetime:
    return datetime.now(UTC)


def sign_manage_token(signer: TokenSigner, subscription_id: int, email: str) -> str:
    """The token of a manage link: bound to one address (via one of its subscriptions)."""
    return signer.sign(Purpose.manage, subscription_id, email)


async def address_of(
    session: AsyncSession, settings: Settings, signer: TokenSigner, token: str
) -> str:
    """The address a manage token is for; InvalidManageToken when forged, expired, or
    when the rows it was bound to are erased."""
    try:
        claims = signer.verify(Purpose.manage, token, max_age=settings.manage_token_max_age_seconds)
    except InvalidToken as exc:
        raise InvalidManageToken() from exc
    if not isinstance(claims.subject, int):
        raise InvalidManageToken()
    email = await session.scalar(
        select(EmailSubscription.email).where(EmailSubscription.id == claims.subject)
    )
    if email is None or email_digest(email) != claims.email_digest:
        raise InvalidManageToken()
    return email


@dataclass(frozen=True, slots=True)
class Preferences:
    timezone: str = DEFAULT_TIMEZONE
    mode: str = "immediate"
    digest_hour: int = DEFAULT_DIGEST_HOUR
    quiet_hours: QuietHours | None = None


async def _preferences_row(session: AsyncSession, email: str) -> SubscriberPreferences | None:
    return await session.get(SubscriberPreferences, email)


def _preferences(row: SubscriberPreferences | None) -> Preferences:
    if row is None:
        return Preferences()
    quiet = None
    if row.quiet_start is not None and row.quiet_end is not None:
        quiet = QuietHours(
            start=row.quiet_start.strftime("%H:%M"), end=row.quiet_end.strftime("%H:%M")
        )
    return Preferences(row.timezone, row.delivery_mode, row.digest_hour, quiet)


def owned_by(recipient: str, channel: Channel = Channel.email) -> ColumnElement[bool]:
    """The subscriptions of one recipient: an address, a webhook URL (issue 13), a
    browser's push endpoint or a Telegram chat (`telegram:<chat id>`, issue 20), whose
    manage pages offer the same controls."""
    if channel is Channel.telegram:  # a chat is a number, not an address column
        return EmailSubscription.telegram_chat_id == chat_id_of(recipient)
    return CHANNELS[channel].address == recipient


async def bound_recipient(
    session: AsyncSession, signer: TokenSigner, purpose: Purpose, token: str, channel: Channel
) -> str | None:
    """The recipient a manage token of `purpose` names through one of its `channel`
    subscriptions (a push endpoint, `telegram:<chat id>`), or None when the token is
    forged, for something else, or the rows it was bound to are erased."""
    try:
        claims = signer.verify(purpose, token, max_age=None)
    except InvalidToken:
        return None
    if not isinstance(claims.subject, int):
        return None
    telegram = channel is Channel.telegram
    column = EmailSubscription.telegram_chat_id if telegram else CHANNELS[channel].address
    value = await session.scalar(
        select(column).where(
            EmailSubscription.id == claims.subject, EmailSubscription.channel == channel
        )
    )
    if value is None:
        return None
    recipient = chat_recipient(int(value)) if telegram else str(value)
    return recipient if email_digest(recipient) == claims.email_digest else None


async def subscriptions_of(
    session: AsyncSession, recipient: str, channel: Channel = Channel.email
) -> Sequence[tuple[EmailSubscription, str]]:
    """A recipient's subscriptions with the key of the player each follows (`hikaru`,
    `lichess:hikaru`: a Chess.com and a Lichess player of one name stay apart), by key."""
    rows = await session.execute(
        select(EmailSubscription, Player.key)
        .join(Player, Player.player_id == EmailSubscription.player_id)
        .where(owned_by(recipient, channel))
        .order_by(Player.key, EmailSubscription.id)
    )
    return [(sub, key) for sub, key in rows.all()]


def my_subscription(sub: EmailSubscription, key: str) -> MySubscription:
    # The stored key, split without judging it (a stored name is listed whatever it is).
    prefix, _, name = key.rpartition(":")
    return MySubscription(
        id=sub.id,
        username=name,
        platform=Platform.lichess if prefix == Platform.lichess else Platform.chesscom,
        key=key,
        active=sub.is_active,
        confirmed=sub.confirmed_at is not None,
        paused=sub.paused,
        filters=filters_of(sub.time_classes, sub.rated_only),
        events=events_of(sub.events),
    )


async def my_subscriptions(session: AsyncSession, email: str) -> Sequence[MySubscription]:
    return [my_subscription(sub, name) for sub, name in await subscriptions_of(session, email)]


async def me(session: AsyncSession, email: str) -> Me:
    prefs = _preferences(await _preferences_row(session, email))
    return Me(
        email=email,
        timezone=prefs.timezone,
        delivery=Delivery(
            mode=prefs.mode,
            digest_hour=prefs.digest_hour,
            quiet_hours=prefs.quiet_hours,
        ),
        subscriptions=list(await my_subscriptions(session, email)),
    )


async def update_preferences(
    session: AsyncSession, email: str, patch: MePatch, *, now: datetime | None = None
) -> None:
    """Apply the fields the patch carries; the next digest is rescheduled from now."""
    now = now or _now()
    # Upsert the defaults first, then lock the row: concurrent patches apply in turn.
    await session.execute(
        insert(SubscriberPreferences).values(email=email).on_conflict_do_nothing()
    )
    row = await session.scalar(
        select(SubscriberPreferences)
        .where(SubscriberPreferences.email == email)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    if patch.timezone is not None:
        row.timezone = patch.timezone
    delivery = patch.delivery
    if delivery is not None:
        fields = delivery.model_fields_set
        if delivery.mode is not None:
            row.delivery_mode = delivery.mode
        if delivery.digest_hour is not None:
            row.digest_hour = delivery.digest_hour
        if "quiet_hours" in fields:
            quiet = delivery.quiet_hours
            row.quiet_start, row.quiet_end = quiet.as_times() if quiet else (None, None)
    if row.delivery_mode == "digest":
        _, row.next_digest_at = next_digest_slot(now, row.digest_hour, row.timezone)
    else:
        row.next_digest_at = None
        # Sessions held for a digest that will not come: logged as skipped, not left behind.
        await session.execute(
            update(NotificationLog)
            .where(
                NotificationLog.status == "held",
                NotificationLog.subscription_id.in_(
                    select(EmailSubscription.id).where(EmailSubscription.email == email)
                ),
            )
            .values(status="skipped", error_message="skipped: digest switched off")
        )
    await session.flush()


async def _own_subscription(
    session: AsyncSession, recipient: str, sub_id: int, channel: Channel
) -> EmailSubscription:
    sub = await session.scalar(
        select(EmailSubscription)
        .where(EmailSubscription.id == sub_id, owned_by(recipient, channel))
        .with_for_update()
    )
    if sub is None:
        raise NotFound("No such subscription")
    return sub


async def update_subscription(
    session: AsyncSession,
    recipient: str,
    sub_id: int,
    patch: SubscriptionPatch,
    *,
    channel: Channel = Channel.email,
) -> None:
    """Pause, resume, refilter or choose the events of one of the recipient's
    subscriptions (else NotFound)."""
    sub = await _own_subscription(session, recipient, sub_id, channel)
    if patch.paused is not None:
        sub.paused = patch.paused
    if patch.filters is not None:
        if patch.filters.time_classes is not None:
            sub.time_classes = list(patch.filters.time_classes)
        if patch.filters.rated_only is not None:
            sub.rated_only = patch.filters.rated_only
    if patch.events is not None:
        sub.events = list(patch.events)
    await session.flush()


async def unsubscribe(
    session: AsyncSession, recipient: str, sub_id: int, *, channel: Channel = Channel.email
) -> None:
    await unsubscribe_one(session, await _own_subscription(session, recipient, sub_id, channel))


async def unsubscribe_all(session: AsyncSession, email: str) -> int:
    result = await session.execute(
        update(EmailSubscription)
        .where(EmailSubscription.email == email, EmailSubscription.is_active.is_(True))
        .values(is_active=False, unsubscribed_at=_now())
        .returning(EmailSubscription.id)
    )
    return len(result.all())


async def request_manage_link(session: AsyncSession, settings: Settings, email: str) -> None:
    """Mail a manage link to the address if it has subscriptions; the caller answers
    the same either way. Capped per address per day like confirmation mails."""
    sub = await session.scalar(
        select(EmailSubscription)
        .where(EmailSubscription.email == email)
        .order_by(EmailSubscription.is_active.desc(), EmailSubscription.id)
        .limit(1)
    )
    if sub is not None:
        await request_message(session, settings, sub, NotificationType.manage_link)
