"""Daily digests (issue 12): local hour, DST, exactly once, nothing when nothing happened."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import (
    EmailSubscription,
    Event,
    NotificationLog,
    SentDigest,
    SubscriberPreferences,
)
from app.notifications.outbox import fan_out
from app.subscriptions.digest import run_due_digests
from app.subscriptions.schedule import local_date_of_slot, next_digest_slot, slot_at
from tests.subscribers.test_fanout import add_sub, game, seed_player, session_event

Factory = async_sessionmaker[AsyncSession]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the schedule (pure) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "hour", "after", "slot"),
    [
        # Berlin winter (UTC+1) and summer (UTC+2).
        ("Europe/Berlin", 8, "2026-03-27T06:00:00", "2026-03-27T07:00:00"),
        ("Europe/Berlin", 8, "2026-03-27T07:00:00", "2026-03-28T07:00:00"),
        ("Europe/Berlin", 8, "2026-03-28T07:00:00", "2026-03-29T06:00:00"),  # DST starts
        # 02:00 does not exist on 2026-03-29: the digest goes at 03:00 CEST (01:00 UTC).
        ("Europe/Berlin", 2, "2026-03-28T12:00:00", "2026-03-29T01:00:00"),
        ("Europe/Berlin", 2, "2026-03-29T01:00:00", "2026-03-30T00:00:00"),
        # 02:00 happens twice on 2026-10-25: the first one (CEST, 00:00 UTC), once.
        ("Europe/Berlin", 2, "2026-10-24T12:00:00", "2026-10-25T00:00:00"),
        ("Europe/Berlin", 2, "2026-10-25T00:00:00", "2026-10-26T01:00:00"),
        # Kolkata: UTC+05:30, no DST.
        ("Asia/Kolkata", 7, "2026-11-27T00:00:00", "2026-11-27T01:30:00"),
        ("Asia/Kolkata", 7, "2026-11-27T01:30:00", "2026-11-28T01:30:00"),
        ("Asia/Kolkata", 0, "2026-11-27T18:29:59", "2026-11-27T18:30:00"),
    ],
)
def test_next_digest_slot(tz: str, hour: int, after: str, slot: str) -> None:
    _, instant = next_digest_slot(utc(after), hour, tz)
    assert instant == utc(slot)


@given(
    tz=st.sampled_from(
        ["Europe/Berlin", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"]
    ),
    hour=st.integers(0, 23),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1)),
)
def test_one_slot_per_local_date_across_a_year(tz: str, hour: int, start: datetime) -> None:
    """Following the schedule for 400 days: one slot on every local date, none twice."""
    instant = start.replace(tzinfo=UTC)
    dates: list[date] = []
    for _ in range(400):
        day, instant = next_digest_slot(instant, hour, tz)
        assert local_date_of_slot(instant, tz) == day
        local = instant.astimezone(ZoneInfo(tz))
        assert local.hour >= hour or local.date() != day  # never before the hour
        dates.append(day)
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(dates))


def test_slot_in_a_spring_forward_gap_is_after_the_gap() -> None:
    assert slot_at(date(2026, 3, 29), 2, "Europe/Berlin") == utc("2026-03-29T01:00:00")


# -- digests in the database ----------------------------------------------------------


async def digest_address(s: AsyncSession, email: str, tz: str, hour: int, now: datetime) -> int:
    sub = await add_sub(s, email)
    _, slot = next_digest_slot(now, hour, tz)
    s.add(
        SubscriberPreferences(
            email=email, timezone=tz, delivery_mode="digest", digest_hour=hour, next_digest_at=slot
        )
    )
    await s.flush()
    return sub


async def outbox(s: AsyncSession, kind: str) -> list[tuple[int, str]]:
    rows = await s.execute(
        select(NotificationLog.subscription_id, NotificationLog.status).where(
            NotificationLog.notification_type == kind
        )
    )
    return [(a, b) for a, b in rows.all()]


async def test_one_digest_at_the_local_hour_listing_the_held_sessions(
    session_factory: Factory,
) -> None:
    evening = utc("2026-03-28T18:00:00")  # 19:00 in Berlin, the eve of the DST change
    async with session_factory() as s, s.begin():
        await seed_player(s)
        sub = await digest_address(s, "digest@example.com", "Europe/Berlin", 8, evening)
        for time_class in ("blitz", "rapid"):
            await fan_out(s, await session_event(s, [game(time_class, True)]), now=evening)
        assert await outbox(s, "live_match") == [(sub, "held"), (sub, "held")]
    # 08:00 CEST on 2026-03-29 is 06:00 UTC: nothing before, one digest at it.
    assert (await run_due_digests(session_factory, now=utc("2026-03-29T05:59:59"))).queued == 0
    assert (await run_due_digests(session_factory, now=utc("2026-03-29T06:00:00"))).queued == 1
    assert (await run_due_digests(session_factory, now=utc("2026-03-29T06:00:30"))).queued == 0
    async with session_factory() as s:
        assert await outbox(s, "digest") == [(sub, "pending")]
        assert await outbox(s, "live_match") == [(sub, "digested"), (sub, "digested")]
        event = await s.scalar(select(Event).where(Event.kind == "digest"))
        assert event is not None and event.payload["local_date"] == "2026-03-29"
        assert len(event.payload["sessions"]) == 2
        prefs = await s.get(SubscriberPreferences, "digest@example.com")
        assert prefs is not None and prefs.next_digest_at == utc("2026-03-30T06:00:00")
    # The next day has nothing to say: no digest, but the schedule moves on.
    assert (await run_due_digests(session_factory, now=utc("2026-03-30T06:00:00"))).queued == 0
    async with session_factory() as s:
        assert len(await outbox(s, "digest")) == 1
        prefs = await s.get(SubscriberPreferences, "digest@example.com")
        assert prefs is not None and prefs.next_digest_at == utc("2026-03-31T06:00:00")


async def test_never_two_digests_for_one_local_date(session_factory: Factory) -> None:
    """A changed hour reschedules the same local date: the key (address, date) holds."""
    now = utc("2026-11-27T01:00:00")  # 06:30 in Kolkata
    async with session_factory() as s, s.begin():
        await seed_player(s)
        await digest_address(s, "k@example.com", "Asia/Kolkata", 7, now)
        await fan_out(s, await session_event(s, [game("blitz", True)]), now=now)
    assert (await run_due_digests(session_factory, now=utc("2026-11-27T01:30:00"))).queued == 1
    async with session_factory() as s, s.begin():
        await fan_out(s, await session_event(s, [game("rapid", True)]))
        prefs = await s.get(SubscriberPreferences, "k@example.com")
        assert prefs is not None
        prefs.digest_hour = 20  # later the same local day
        prefs.next_digest_at = utc("2026-11-27T14:30:00")
    assert (await run_due_digests(session_factory, now=utc("2026-11-27T14:30:00"))).queued == 0
    # The held session goes out the next day instead.
    assert (await run_due_digests(session_factory, now=utc("2026-11-28T14:30:00"))).queued == 1
    async with session_factory() as s:
        dates = (
            await s.scalars(select(SentDigest.local_date).order_by(SentDigest.local_date))
        ).all()
        assert [d.isoformat() for d in dates] == ["2026-11-27", "2026-11-28"]


async def test_several_workers_make_each_digest_exactly_once(session_factory: Factory) -> None:
    now = utc("2026-06-01T12:00:00")
    async with session_factory() as s, s.begin():
        await seed_player(s)
        for i in range(30):
            await digest_address(s, f"d{i}@example.com", "Europe/Berlin", 15, now)
        await fan_out(s, await session_event(s, [game("bullet", True)]), now=now)
    due = utc("2026-06-01T13:00:00")  # 15:00 CEST
    runs = await asyncio.gather(
        *(run_due_digests(session_factory, now=due, batch=4) for _ in range(3))
    )
    assert sum(r.queued for r in runs) == 30
    async with session_factory() as s:
        per_address = await s.execute(
            select(NotificationLog.subscription_id, func.count())
            .where(NotificationLog.notification_type == "digest")
            .group_by(NotificationLog.subscription_id)
        )
        assert sorted(n for _, n in per_address.all()) == [1] * 30


async def test_unsubscribed_or_paused_sessions_are_not_listed(session_factory: Factory) -> None:
    now = utc("2026-06-01T12:00:00")
    async with session_factory() as s, s.begin():
        await seed_player(s)
        sub = await digest_address(s, "p@example.com", "UTC", 13, now)
        await fan_out(s, await session_event(s, [game("bullet", True)]), now=now)
        row = await s.get(EmailSubscription, sub)
        assert row is not None
        row.paused = True
    assert (await run_due_digests(session_factory, now=utc("2026-06-01T13:00:00"))).queued == 0
    async with session_factory() as s:
        assert await outbox(s, "live_match") == [(sub, "skipped")]
