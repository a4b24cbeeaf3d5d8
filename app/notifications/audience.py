"""Who hears about a live session, and how: the subscriber's controls as SQL (issue 12).

Fan-out is one `INSERT … SELECT` (app.notifications.outbox.fan_out); these expressions
are its parts, so a filtered-out session creates no row at all for that subscriber:

* `passes_filters`: one game of the session has one of the subscription's time classes
  (and, with `rated_only`, is rated). The event carries the time classes of all its games
  and of its rated ones, so the test is one array overlap.
* `wants_event`: the subscription's `events` hold the event's kind (`session` for a
  live session, `stream` for a stream going live).
* a paused subscription is not in the audience.
* `delivery_status`: a digest address's row is `held` for its daily digest; an immediate
  one inside its quiet hours (local wall time, the address's time zone) is `skipped`,
  which is the log of what was not sent; otherwise `pending`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Time,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
)
from sqlalchemy import any_ as sql_any
from sqlalchemy.types import Boolean

from app.models import EmailSubscription, Event, NotificationType, SubscriberPreferences
from app.models.subscription import EVENT_NOTIFICATION_TYPES

QUIET_HOURS_NOTE = "skipped: quiet hours"


def passes_filters(
    event: type[Event], subscription: type[EmailSubscription]
) -> ColumnElement[bool]:
    classes = case((subscription.rated_only, event.rated_time_classes), else_=event.time_classes)
    overlap: ColumnElement[bool] = classes.op("&&", return_type=Boolean)(subscription.time_classes)
    return or_(event.kind != _const(NotificationType.live_match), overlap)


def wants_event(
    event: type[Event], subscription: type[EmailSubscription]
) -> ColumnElement[bool]:
    """The subscription asked for this kind of event; kinds that no `events` choice names
    (none is fanned out today) are not filtered."""
    chosen = [
        and_(event.kind == _const(kind), _const(name) == sql_any(subscription.events))
        for name, kind in EVENT_NOTIFICATION_TYPES.items()
    ]
    return or_(event.kind.not_in([_const(k) for k in EVENT_NOTIFICATION_TYPES.values()]), *chosen)


def audience_conditions(
    event: type[Event], subscription: type[EmailSubscription]
) -> list[ColumnElement[bool]]:
    """Which subscriptions receive an event: the player's active, confirmed ones that
    are not paused, asked for this kind of event, and whose filters one game of the
    session passes (issue 12, issue 19)."""
    return [
        subscription.player_id == event.player_id,
        subscription.is_active.is_(True),
        subscription.confirmed_at.is_not(None),
        not_paused(subscription),
        wants_event(event, subscription),
        passes_filters(event, subscription),
    ]


def not_paused(subscription: type[EmailSubscription]) -> ColumnElement[bool]:
    return subscription.paused.is_(False)


def in_quiet_hours(
    prefs: type[SubscriberPreferences], now: ColumnElement[Any]
) -> ColumnElement[bool]:
    """The local wall time at `now` is within [quiet_start, quiet_end), wrapping midnight.
    The reference in Python: app.subscriptions.schedule.in_quiet_hours."""
    local = cast(func.timezone(prefs.timezone, now), Time)
    start, end = prefs.quiet_start, prefs.quiet_end
    inside = case(
        (start < end, and_(local >= start, local < end)),
        (start > end, or_(local >= start, local < end)),
        else_=false(),
    )
    return and_(start.is_not(None), end.is_not(None), inside)


def _const(value: str) -> ColumnElement[str]:
    """A constant of ours written into the statement: the bind parameters of a fan-out
    stay few and fixed (no growth with the audience, nothing from outside)."""
    assert "'" not in value
    return literal_column(f"'{value}'", String)


def delivery_status(
    prefs: type[SubscriberPreferences], now: ColumnElement[Any]
) -> ColumnElement[str]:
    return case(
        (prefs.delivery_mode == _const("digest"), _const("held")),
        (in_quiet_hours(prefs, now), _const("skipped")),
        else_=_const("pending"),
    )


def status_note(status: ColumnElement[str]) -> ColumnElement[str | None]:
    return case((status == _const("skipped"), _const(QUIET_HOURS_NOTE)), else_=None)


def now_param(now: datetime | None) -> ColumnElement[Any]:
    """The clock of a fan-out: the database's, or a given instant (tests)."""
    return func.now() if now is None else literal(now)
