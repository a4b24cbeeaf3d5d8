"""Subscription rules: double opt-in, consent, unsubscribe, erasure (SPEC §4, issue 4).

Answers never depend on whether an address was already subscribed, so the API cannot
be used to probe addresses; confirmation mails are capped per address so it cannot be
used to mail-bomb one either.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    ScalarSelect,
    Select,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.config import Settings
from app.errors import InvalidToken, NotFound
from app.models import (
    EmailSubscription,
    NotificationLog,
    NotificationType,
    Player,
    SentDigest,
    SubscriberPreferences,
)
from app.models.subscription import DEFAULT_TIME_CLASSES
from app.notifications.outbox import request_confirmation, request_event
from app.players import service as players
from app.players.platforms import Platforms
from app.subscriptions.me_schemas import Filters
from app.tokens import Purpose, TokenSigner, email_digest


@dataclass(frozen=True, slots=True)
class Consent:
    ip: str | None
    user_agent: str | None


def _now() -> datetime:
    return datetime.now(UTC)


_ADDRESS_LOCK = 0x4D41494C  # advisory-lock namespace ("MAIL") for per-address mail caps


def _mails_since(
    email: str | ColumnElement[str],
    kind: NotificationType | ColumnElement[str],
    since: datetime | ColumnElement[datetime],
) -> ScalarSelect[int]:
    """How many mails of one kind went to an address since `since`, as a subquery."""
    return (
        select(func.count(NotificationLog.id))
        .join(EmailSubscription, EmailSubscription.id == NotificationLog.subscription_id)
        .where(
            EmailSubscription.email == email,
            NotificationLog.notification_type == kind,
            NotificationLog.created_at >= since,
        )
        .scalar_subquery()
    )


# The write path's statements are built once, with bind parameters: building and
# cache-keying them per request cost more CPU than the database work (py-spy, issue 11).
_LOCK_ADDRESS = select(
    func.pg_advisory_xact_lock(_ADDRESS_LOCK, func.hashtext(bindparam("address", type_=String)))
)
_subs: Table = EmailSubscription.__table__  # type: ignore[assignment]
# Stamp `confirmation_sent_at` only while the address is under its daily cap.
_STAMP_UNDER_CAP = (
    update(_subs)
    .where(
        _subs.c.id == bindparam("sub_id"),
        _mails_since(
            bindparam("address", type_=String),
            bindparam("kind", type_=NotificationLog.notification_type.type),
            bindparam("since", type_=NotificationLog.created_at.type),
        )
        < bindparam("cap"),
    )
    .values(confirmation_sent_at=bindparam("now", type_=_subs.c.confirmation_sent_at.type))
    .returning(_subs.c.id)
)


def _insert_new_stmt(source: Select[Any]) -> Executable:
    columns = ["player_id", "email", "is_active", "time_classes", "rated_only", "confirmed_at"]
    stmt = (
        insert(EmailSubscription)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["email", "player_id"])
        .returning(EmailSubscription)
    )
    return select(EmailSubscription).from_statement(stmt)


_NEW_COLUMNS = (
    bindparam("email", type_=String).label("email"),
    true().label("is_active"),
    bindparam("time_classes", type_=_subs.c.time_classes.type).label("time_classes"),
    bindparam("rated_only", type_=_subs.c.rated_only.type).label("rated_only"),
    bindparam("confirmed_at", type_=_subs.c.confirmed_at.type).label("confirmed_at"),
)
# A new (email, player) row, the player found by its key in the same statement.
_INSERT_NEW_BY_NAME = _insert_new_stmt(
    select(Player.player_id, *_NEW_COLUMNS).where(Player.key == bindparam("username"))
)
_INSERT_NEW_BY_ID = _insert_new_stmt(
    select(bindparam("player_id", type_=BigInteger).label("player_id"), *_NEW_COLUMNS)
)


async def _lock_address(session: AsyncSession, email: str) -> None:
    """A per-address transaction lock: requests for one address count and enqueue one
    after another, so a burst cannot slip past the cap. It must be its own statement,
    before the count: a statement reads the snapshot taken when it started."""
    await session.execute(_LOCK_ADDRESS, {"address": email.lower()})


async def mails_today(session: AsyncSession, email: str, kind: NotificationType) -> int:
    """How many mails of one kind went to an address in the last 24 h (the anti-abuse cap).

    Takes a per-address transaction lock first, so concurrent requests for one address
    count and enqueue one after another and a burst cannot slip past the cap.
    """
    await _lock_address(session, email)
    return await session.scalar(select(_mails_since(email, kind, _now() - timedelta(days=1)))) or 0


async def _queue_confirmation(
    session: AsyncSession, settings: Settings, sub: EmailSubscription
) -> bool:
    """Queue a confirmation mail unless the cooldown or the per-address daily cap forbids.

    Three statements: the address lock; one UPDATE that stamps `confirmation_sent_at`
    only while the address is under its daily cap (the count is its condition); one
    statement that records the event, queues its mail and wakes the worker.
    """
    now = _now()
    cooldown = timedelta(seconds=settings.confirmation_resend_cooldown_seconds)
    if sub.confirmation_sent_at is not None and now - sub.confirmation_sent_at < cooldown:
        return False
    await session.flush()  # nothing of `sub` may be pending behind the UPDATE below
    await _lock_address(session, sub.recipient)
    stamped = await session.scalar(
        _STAMP_UNDER_CAP,
        {
            "sub_id": sub.id,
            "address": sub.recipient,
            "kind": NotificationType.confirmation,
            "since": now - timedelta(days=1),
            "cap": settings.confirmation_emails_per_address_per_day,
            "now": now,
        },
    )
    if stamped is None:
        return False
    set_committed_value(sub, "confirmation_sent_at", now)
    await request_confirmation(session, sub.id, player_id=sub.player_id)
    return True


async def _insert_new(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    player: int | str,
    filters: Filters | None,
) -> EmailSubscription | None:
    """Insert the (email, player) subscription in one statement and return it, locked by
    its insert; None when the pair exists already, or no tracked player has the
    username `player` names.

    ON CONFLICT DO NOTHING waits for a concurrent insert of the same pair, so two
    requests serialise on the unique key as before, without a savepoint.
    """
    params: dict[str, Any] = {
        "email": email,
        # The column defaults, unless the request names filters.
        "time_classes": list(filters.time_classes if filters else DEFAULT_TIME_CLASSES),
        "rated_only": filters.rated_only if filters else False,
        "confirmed_at": None if settings.require_email_confirmation else _now(),
    }
    if isinstance(player, int):
        stmt, params["player_id"] = _INSERT_NEW_BY_ID, player
    else:  # the tracked player of that name, if any: no row, nothing inserted
        stmt, params["username"] = _INSERT_NEW_BY_NAME, player.lower()
    sub: EmailSubscription | None = await session.scalar(
        stmt, params, execution_options={"populate_existing": True}
    )
    return sub


async def subscribe(
    session: AsyncSession,
    settings: Settings,
    platforms: Platforms,
    *,
    email: str,
    username: str,
    filters: Filters | None = None,
) -> str:
    """Subscribe `email` to `username`, tracking the player on the fly if needed.

    Returns the public status to report: "active" or "pending_confirmation". NotFound when
    Chess.com has no such player, UpstreamUnavailable when it cannot be reached.

    A new address for a tracked player, the common case, costs one INSERT … SELECT that
    finds the player and stores the row, then the confirmation's three statements.
    """
    sub = await _insert_new(session, settings, email=email, player=username, filters=filters)
    if sub is not None:
        return await _settle_new(session, settings, sub)
    player_id = await session.scalar(select(Player.player_id).where(Player.key == username.lower()))
    if player_id is None:
        player, _ = await players.track_player(session, platforms, username)
        player_id = player.player_id
    return await _subscribe_pair(
        session, settings, email=email, player_id=player_id, filters=filters
    )


async def subscribe_to_player(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    player: Player,
    filters: Filters | None = None,
) -> str:
    """Create or renew a subscription to a tracked player; returns the public status.

    `filters` apply to a new subscription or one awaiting (re)confirmation: the
    confirmation then stands for them. An active subscription's filters change only
    through its manage link, so nobody can retune someone else's alerts.
    """
    return await _subscribe_pair(
        session, settings, email=email, player_id=player.player_id, filters=filters
    )


async def _settle_new(session: AsyncSession, settings: Settings, sub: EmailSubscription) -> str:
    """A just-inserted subscription: active already, or awaiting its confirmation mail."""
    if not settings.require_email_confirmation:
        return "active"  # inserted confirmed
    await _queue_confirmation(session, settings, sub)
    return "pending_confirmation"


async def _subscribe_pair(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    player_id: int,
    filters: Filters | None,
) -> str:
    sub = await _insert_new(session, settings, email=email, player=player_id, filters=filters)
    if sub is not None:
        return await _settle_new(session, settings, sub)
    # The pair exists (a concurrent insert of it has committed by now): lock it.
    sub = await session.scalar(
        select(EmailSubscription)
        .where(EmailSubscription.email == email, EmailSubscription.player_id == player_id)
        .with_for_update()
    )
    if sub is None:  # erased between the two statements: start over
        return await _subscribe_pair(
            session, settings, email=email, player_id=player_id, filters=filters
        )
    awaiting = not sub.is_active or sub.confirmed_at is None
    if filters is not None and awaiting:
        sub.time_classes, sub.rated_only = list(filters.time_classes), filters.rated_only
    if not settings.require_email_confirmation:
        if awaiting:
            sub.is_active = True
            sub.unsubscribed_at = None
            sub.confirmed_at = sub.confirmed_at or _now()
        await session.flush()
        return "active"
    if sub.is_active and sub.confirmed_at is not None:
        # Already subscribed: say the same as for a new address, send nothing.
        return "pending_confirmation"
    if not sub.is_active:
        # Coming back after unsubscribing needs a fresh opt-in, and fresh proof of it.
        sub.is_active = True
        sub.confirmed_at = None
        sub.consent_ip = sub.consent_user_agent = None
        sub.unsubscribed_at = None
    await _queue_confirmation(session, settings, sub)
    return "pending_confirmation"


async def _subscription_for(
    session: AsyncSession, signer: TokenSigner, purpose: Purpose, token: str, max_age: int
) -> EmailSubscription:
    claims = signer.verify(purpose, token, max_age=max_age)
    if not isinstance(claims.subject, int):
        raise InvalidToken()
    sub = await session.scalar(
        select(EmailSubscription).where(EmailSubscription.id == claims.subject).with_for_update()
    )
    # A token outlives nothing it was bound to: erased or re-created rows do not match.
    if sub is None or email_digest(sub.recipient) != claims.email_digest:
        raise InvalidToken()
    return sub


async def username_of(session: AsyncSession, player_id: int) -> str:
    return (
        await session.scalar(select(Player.username).where(Player.player_id == player_id))
    ) or ""


async def check_token(
    session: AsyncSession, settings: Settings, signer: TokenSigner, purpose: Purpose, token: str
) -> EmailSubscription:
    """The subscription a confirm or unsubscribe link names, locked; InvalidToken if none."""
    max_age = (
        settings.confirmation_token_max_age_seconds
        if purpose is Purpose.confirm
        else settings.unsubscribe_token_max_age_seconds
    )
    return await _subscription_for(session, signer, purpose, token, max_age)


async def confirm(session: AsyncSession, sub: EmailSubscription, consent: Consent) -> None:
    """Activate a subscription whose confirm link was verified. Idempotent."""
    if sub.confirmed_at is None or not sub.is_active:
        sub.is_active = True
        sub.confirmed_at = _now()
        sub.unsubscribed_at = None
        sub.consent_ip = (consent.ip or "")[:64] or None
        sub.consent_user_agent = (consent.user_agent or "")[:500] or None
        await session.flush()


async def unsubscribe(session: AsyncSession, sub: EmailSubscription) -> None:
    """Soft-delete a subscription (its unsubscribe link was verified). Idempotent."""
    if sub.is_active:
        sub.is_active = False
        sub.unsubscribed_at = _now()
        await session.flush()


async def list_for_player(
    session: AsyncSession, username: str
) -> tuple[Player, Sequence[EmailSubscription]]:
    """A tracked player and all its subscriptions, oldest first; NotFound if not tracked."""
    player = await players.find_player(session, username)
    if player is None:
        raise NotFound(f"Player '{username.lower()}' is not tracked")
    subs = await session.scalars(
        select(EmailSubscription)
        .where(EmailSubscription.player_id == player.player_id)
        .order_by(EmailSubscription.created_at, EmailSubscription.id)
    )
    return player, subs.all()


async def request_erasure(session: AsyncSession, settings: Settings, email: str) -> None:
    """Mail a signed erase link to the address, if we hold anything about it.

    The caller answers the same either way; the per-address caps of confirmation
    mails apply, so this cannot be used to flood a mailbox either.
    """
    sub = await session.scalar(
        select(EmailSubscription)
        .where(EmailSubscription.email == email)
        .order_by(EmailSubscription.id)
        .limit(1)
        .with_for_update()
    )
    if sub is None:
        return
    recent = await mails_today(session, email, NotificationType.erase_request)
    if recent >= settings.confirmation_emails_per_address_per_day:
        return
    await request_event(session, NotificationType.erase_request, f"erase:{uuid.uuid4()}", sub.id)


async def email_for_erase_token(
    session: AsyncSession, settings: Settings, signer: TokenSigner, token: str
) -> str | None:
    """The address an erase link is for; None when its rows are already gone."""
    claims = signer.verify(
        Purpose.erase, token, max_age=settings.confirmation_token_max_age_seconds
    )
    if not isinstance(claims.subject, int):
        raise InvalidToken()
    email = await session.scalar(
        select(EmailSubscription.email).where(EmailSubscription.id == claims.subject)
    )
    if email is None:
        # The row the link named is gone, but other rows of the address may remain:
        # find them by the address digest the token carries.
        digest = func.left(
            func.encode(func.sha256(func.convert_to(EmailSubscription.email, "UTF8")), "hex"), 16
        )
        email = await session.scalar(
            select(EmailSubscription.email).where(digest == claims.email_digest).limit(1)
        )
        return email  # None: erased already, the link did its job
    if email_digest(email) != claims.email_digest:
        raise InvalidToken()
    return email


async def erase_address(session: AsyncSession, email: str) -> int:
    """Delete every row about an address; logs go with their subscriptions (ON DELETE CASCADE)."""
    email = email.lower()
    await session.execute(delete(SubscriberPreferences).where(SubscriberPreferences.email == email))
    await session.execute(delete(SentDigest).where(SentDigest.email == email))
    result = await session.execute(
        delete(EmailSubscription)
        .where(EmailSubscription.email == email.lower())
        .returning(EmailSubscription.id)
    )
    return len(result.all())
