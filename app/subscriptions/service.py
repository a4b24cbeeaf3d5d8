"""The subscription domain, written once for every channel (SPEC §4, §5; issue 18 item 3).

Subscribe, confirm, per-recipient caps, filters, events, unsubscribe and erase; pause
and the `/me` controls are in app.subscriptions.me. What differs by medium (the address
column, how an address is checked, what an active subscriber asking again gets) is
data in app.subscriptions.recipients.

One locking strategy: a subscription row is created with INSERT … ON CONFLICT DO
NOTHING on its (address, player) key, which waits for a concurrent insert of the same
pair, and otherwise locked with SELECT … FOR UPDATE; requests that count toward a
recipient's daily cap take the recipient's advisory transaction lock first, so a burst
cannot slip past the cap. One confirmation path: `_queue_confirmation`, for every
channel that confirms by a message.

Answers never depend on whether an address was already subscribed, so the API cannot
be used to probe addresses; one-recipient messages are capped per recipient and day so
it cannot be used to mail-bomb an address or spam a channel either.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    Integer,
    ScalarSelect,
    String,
    Table,
    any_,
    bindparam,
    delete,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.attributes import set_committed_value

from app.config import Settings
from app.errors import InvalidToken, NotFound
from app.models import (
    Channel,
    EmailSubscription,
    NotificationLog,
    NotificationType,
    Player,
    SentDigest,
    SubscriberPreferences,
)
from app.models.subscription import DEFAULT_EVENTS, DEFAULT_TIME_CLASSES
from app.notifications.outbox import request_confirmation, request_event
from app.players import service as players
from app.players.platforms import Platforms
from app.subscriptions.me_schemas import Filters
from app.subscriptions.recipients import (
    CHANNELS,
    WEBHOOK,
    ChannelRules,
    Recipient,
    rules_of,
    webhook_spellings,
)
from app.tokens import Purpose, TokenSigner, email_digest


@dataclass(frozen=True, slots=True)
class Consent:
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class Choice:
    """What a subscriber asks for when subscribing. `None` means the defaults for a new
    subscription and no change for one awaiting confirmation."""

    filters: Filters | None = None
    events: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class Subscribed:
    status: str  # "pending_confirmation" or "active"
    secret: str | None = None  # a `json` webhook's new signing secret, shown once


def _now() -> datetime:
    return datetime.now(UTC)


_subs: Table = EmailSubscription.__table__  # type: ignore[assignment]


def _requests_since(
    rules: ChannelRules,
    address: ColumnElement[str],
    kinds: ColumnElement[Any],
    since: ColumnElement[datetime],
) -> ScalarSelect[int]:
    """How many one-recipient requests of `kinds` went to an address since `since`."""
    return (
        select(func.count(NotificationLog.id))
        .join(EmailSubscription, EmailSubscription.id == NotificationLog.subscription_id)
        .where(
            rules.address == address,
            NotificationLog.notification_type == any_(kinds),
            NotificationLog.created_at >= since,
        )
        .scalar_subquery()
    )


def _cap_params() -> tuple[ColumnElement[str], ColumnElement[Any], ColumnElement[datetime]]:
    return (
        bindparam("address", type_=String),
        bindparam("kinds", type_=ARRAY(String)),
        bindparam("since", type_=NotificationLog.created_at.type),
    )


# The write path's statements are built once per channel, with bind parameters: building
# and cache-keying them per request cost more CPU than the database work (py-spy, issue 11).
_LOCK_RECIPIENT = select(
    func.pg_advisory_xact_lock(
        bindparam("namespace", type_=Integer), func.hashtext(bindparam("address", type_=String))
    )
)


@dataclass(frozen=True, slots=True)
class _Statements:
    count: Executable  # the recipient's capped requests since a time
    stamp_under_cap: Executable  # stamp `confirmation_sent_at` while under the cap
    insert_by_name: Executable  # a new (address, player named by username) row
    insert_by_id: Executable  # a new (address, player_id) row


def _insert_new_stmt(
    rules: ChannelRules, player: ColumnElement[int] | InstrumentedAttribute[int], by_name: bool
) -> Executable:
    values: dict[str, ColumnElement[Any]] = {
        "channel": bindparam("channel", type_=_subs.c.channel.type),
        rules.address_column: bindparam("address", type_=String),
        "is_active": true(),
        "time_classes": bindparam("time_classes", type_=_subs.c.time_classes.type),
        "rated_only": bindparam("rated_only", type_=_subs.c.rated_only.type),
        "events": bindparam("events", type_=_subs.c.events.type),
        "confirmed_at": bindparam("confirmed_at", type_=_subs.c.confirmed_at.type),
        **{
            name: bindparam(name, type_=_subs.c[name].type)
            for name in rules.columns
        },
    }
    source = select(player.label("player_id"), *(v.label(k) for k, v in values.items()))
    if by_name:
        source = source.where(Player.key == bindparam("username"))
    stmt = (
        insert(EmailSubscription)
        .from_select(["player_id", *values], source)
        .on_conflict_do_nothing(index_elements=[rules.address_column, "player_id"])
        .returning(EmailSubscription)
    )
    return select(EmailSubscription).from_statement(stmt)


def _statements(rules: ChannelRules) -> _Statements:
    count = select(_requests_since(rules, *_cap_params()))
    stamp = (
        update(_subs)
        .where(
            _subs.c.id == bindparam("sub_id"),
            _requests_since(rules, *_cap_params()) < bindparam("cap"),
        )
        .values(confirmation_sent_at=bindparam("now", type_=_subs.c.confirmation_sent_at.type))
        .returning(_subs.c.id)
    )
    return _Statements(
        count=count,
        stamp_under_cap=stamp,
        insert_by_name=_insert_new_stmt(rules, Player.player_id, by_name=True),
        insert_by_id=_insert_new_stmt(
            rules, bindparam("player_id", type_=BigInteger), by_name=False
        ),
    )


_STATEMENTS: dict[Channel, _Statements] = {c: _statements(r) for c, r in CHANNELS.items()}


async def _lock_recipient(session: AsyncSession, rules: ChannelRules, address: str) -> None:
    """A per-recipient transaction lock: requests for one recipient count and enqueue one
    after another, so a burst cannot slip past the cap. It must be its own statement,
    before the count: a statement reads the snapshot taken when it started."""
    await session.execute(
        _LOCK_RECIPIENT, {"namespace": rules.lock_namespace, "address": address}
    )


async def requests_today(
    session: AsyncSession, rules: ChannelRules, address: str, kind: NotificationType
) -> int:
    """How many requests capped with `kind` went to a recipient in the last 24 h, under
    the recipient's lock (held to the end of the transaction)."""
    await _lock_recipient(session, rules, address)
    params = {
        "address": address,
        "kinds": list(rules.capped_together(kind)),
        "since": _now() - timedelta(days=1),
    }
    return await session.scalar(_STATEMENTS[rules.channel].count, params) or 0


# Each request is an event of its own (a fresh key): a second link is a message of its own.
_KEY_PREFIX = {NotificationType.manage_link: "manage", NotificationType.erase_request: "erase"}


async def request_message(
    session: AsyncSession, settings: Settings, sub: EmailSubscription, kind: NotificationType
) -> bool:
    """Queue a one-recipient message (a manage link, an erase link) to the subscription's
    recipient, unless the recipient's daily cap is reached. True if queued."""
    rules = rules_of(sub.channel)
    if await requests_today(session, rules, sub.recipient, kind) >= (
        settings.confirmation_emails_per_address_per_day
    ):
        return False
    key = f"{_KEY_PREFIX[kind]}:{uuid.uuid4()}"
    return await request_event(session, kind, key, sub.id, player_id=sub.player_id)


async def _queue_confirmation(
    session: AsyncSession, settings: Settings, sub: EmailSubscription
) -> bool:
    """Queue a confirmation (an email's confirm link, a webhook's verification message)
    unless the cooldown or the recipient's daily cap forbids. The one confirmation path.

    Three statements: the recipient lock; one UPDATE that stamps `confirmation_sent_at`
    only while the recipient is under its daily cap (the count is its condition); one
    statement that records the event, queues its message and wakes the worker.
    """
    now = _now()
    cooldown = timedelta(seconds=settings.confirmation_resend_cooldown_seconds)
    if sub.confirmation_sent_at is not None and now - sub.confirmation_sent_at < cooldown:
        return False
    rules = rules_of(sub.channel)
    await session.flush()  # nothing of `sub` may be pending behind the UPDATE below
    await _lock_recipient(session, rules, sub.recipient)
    stamped = await session.scalar(
        _STATEMENTS[rules.channel].stamp_under_cap,
        {
            "sub_id": sub.id,
            "address": sub.recipient,
            "kinds": list(rules.capped_together(NotificationType.confirmation)),
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
    recipient: Recipient,
    player: int | str,
    choice: Choice,
) -> EmailSubscription | None:
    """Insert the (recipient, player) subscription in one statement and return it, locked
    by its insert; None when the pair exists already, or no tracked player has the
    username `player` names.

    ON CONFLICT DO NOTHING waits for a concurrent insert of the same pair, so two
    requests serialise on the unique key, without a savepoint.
    """
    rules = recipient.rules
    filters = choice.filters
    params: dict[str, Any] = {
        "channel": rules.channel.value,
        "address": recipient.address,
        # The column defaults, unless the request names filters or events.
        "time_classes": list(filters.time_classes if filters else DEFAULT_TIME_CLASSES),
        "rated_only": filters.rated_only if filters else False,
        "events": list(choice.events or DEFAULT_EVENTS),
        "confirmed_at": None if recipient.confirmation.required else _now(),
        **{name: recipient.columns.get(name) for name in rules.columns},
    }
    statements = _STATEMENTS[rules.channel]
    if isinstance(player, int):
        stmt, params["player_id"] = statements.insert_by_id, player
    else:  # the tracked player of that name, if any: no row, nothing inserted
        stmt, params["username"] = statements.insert_by_name, player.lower()
    sub: EmailSubscription | None = await session.scalar(
        stmt, params, execution_options={"populate_existing": True}
    )
    return sub


async def subscribe(
    session: AsyncSession,
    settings: Settings,
    platforms: Platforms,
    *,
    recipient: Recipient,
    username: str,
    choice: Choice = Choice(),
) -> Subscribed:
    """Subscribe a recipient its channel checked (app.subscriptions.recipients) to `username`,
    tracking the player on the fly if needed.

    The answer's status is "active" or "pending_confirmation". NotFound when Chess.com has
    no such player, UpstreamUnavailable when it cannot be reached.

    A new recipient for a tracked player, the common case, costs one INSERT … SELECT that
    finds the player and stores the row, then the confirmation's three statements.
    """
    sub = await _insert_new(session, settings, recipient, username, choice)
    if sub is not None:
        return await _settle_new(session, settings, recipient, sub)
    player_id = await session.scalar(
        select(Player.player_id).where(Player.key == username.lower())
    )
    if player_id is None:
        player, _ = await players.track_player(session, platforms, username)
        player_id = player.player_id
    return await _subscribe_pair(session, settings, recipient, player_id, choice)


async def subscribe_to_player(
    session: AsyncSession,
    settings: Settings,
    *,
    recipient: Recipient,
    player: Player,
    choice: Choice = Choice(),
) -> Subscribed:
    """Create or renew a subscription to a tracked player.

    The choice (filters, events) applies to a new subscription or one awaiting
    (re)confirmation: the confirmation then stands for it. An active subscription's
    choice changes only through its manage link, so nobody can retune someone else's
    alerts.
    """
    return await _subscribe_pair(session, settings, recipient, player.player_id, choice)


async def _settle_new(
    session: AsyncSession, settings: Settings, recipient: Recipient, sub: EmailSubscription
) -> Subscribed:
    """A just-inserted subscription: active already, or awaiting its confirmation."""
    if not recipient.confirmation.required:
        return Subscribed("active", recipient.secret)  # inserted confirmed
    if recipient.confirms_by_message:
        await _queue_confirmation(session, settings, sub)
    return Subscribed("pending_confirmation", recipient.secret)


def _opt_in_again(
    sub: EmailSubscription, recipient: Recipient, choice: Choice, *, confirmed: bool
) -> None:
    """A subscription that is not active and confirmed becomes a fresh opt-in: the
    choice and the medium's columns as asked now, and (with confirmation on) fresh
    proof of consent to come."""
    if choice.filters is not None:
        sub.time_classes = list(choice.filters.time_classes)
        sub.rated_only = choice.filters.rated_only
    if choice.events is not None:
        sub.events = list(choice.events)
    for name, value in recipient.columns.items():
        setattr(sub, name, value)
    if confirmed:
        sub.confirmed_at = sub.confirmed_at or _now()
    elif not sub.is_active:
        # Coming back after unsubscribing needs a fresh opt-in, and fresh proof of it.
        sub.confirmed_at = None
        sub.consent_ip = sub.consent_user_agent = None
    sub.is_active = True
    sub.unsubscribed_at = None


async def _subscribe_pair(
    session: AsyncSession,
    settings: Settings,
    recipient: Recipient,
    player_id: int,
    choice: Choice,
) -> Subscribed:
    sub = await _insert_new(session, settings, recipient, player_id, choice)
    if sub is not None:
        return await _settle_new(session, settings, recipient, sub)
    # The pair exists (a concurrent insert of it has committed by now): lock it.
    rules = recipient.rules
    sub = await session.scalar(
        select(EmailSubscription)
        .where(rules.address == recipient.address, EmailSubscription.player_id == player_id)
        .with_for_update()
    )
    if sub is None:  # erased between the two statements: start over
        return await _subscribe_pair(session, settings, recipient, player_id, choice)
    confirm = recipient.confirmation.required
    pending = "pending_confirmation" if confirm else "active"
    if sub.is_active and sub.confirmed_at is not None:
        # Already subscribed: the same answer as for a new recipient, nothing changes
        # (a secret is not shown again). A webhook is posted its manage link: its way
        # back to its controls when older messages are gone (capped per day).
        if rules.repeat_sends_manage_link:
            await request_message(session, settings, sub, NotificationType.manage_link)
        return Subscribed(pending)
    _opt_in_again(sub, recipient, choice, confirmed=not confirm)
    await session.flush()
    if recipient.confirms_by_message:
        await _queue_confirmation(session, settings, sub)
    return Subscribed(pending, recipient.secret)


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

    The caller answers the same either way; the address's daily cap applies, so this
    cannot be used to flood a mailbox either.
    """
    sub = await session.scalar(
        select(EmailSubscription)
        .where(EmailSubscription.email == email)
        .order_by(EmailSubscription.id)
        .limit(1)
        .with_for_update()
    )
    if sub is not None:
        await request_message(session, settings, sub, NotificationType.erase_request)


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


async def erase_address(session: AsyncSession, email: str, *, also: Iterable[str] = ()) -> int:
    """Delete every row about an address: its subscriptions, the push and Telegram
    subscriptions it owns (made with its manage token, `owner_email`), its settings and
    digests; logs go with their subscriptions (ON DELETE CASCADE). `also`: other stored
    spellings of the address to erase with it. How many rows were deleted."""
    forms = sorted({email.lower(), *also})
    deleted = 0
    for statement in (
        delete(SubscriberPreferences).where(SubscriberPreferences.email.in_(forms)),
        delete(SentDigest).where(SentDigest.email.in_(forms)),
        delete(EmailSubscription).where(
            or_(EmailSubscription.email.in_(forms), EmailSubscription.owner_email.in_(forms))
        ),
    ):
        result = await session.execute(statement)
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


async def erase_webhook(session: AsyncSession, url: str) -> int:
    """Delete every subscription (and, by cascade, log) of a webhook URL, any spelling."""
    return await erase_where(session, WEBHOOK.address.in_(webhook_spellings(url)))


async def erase_where(session: AsyncSession, condition: ColumnElement[bool]) -> int:
    """Delete the subscriptions `condition` picks (and, by cascade, their logs); how many."""
    result = await session.execute(
        delete(EmailSubscription).where(condition).returning(EmailSubscription.id)
    )
    return len(result.all())
