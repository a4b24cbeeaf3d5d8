"""Fan-out obeys the subscriber's controls (issue 12): filters, pause, quiet hours, digest.

Against the real PostgreSQL: the rules are SQL inside the one INSERT … SELECT, so the
tests call `fan_out` with a controllable clock and read the rows it wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import NullPool, delete, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import aliased

from app.models import (
    EmailSubscription,
    Event,
    NotificationLog,
    NotificationType,
    Player,
    SubscriberPreferences,
)
from app.notifications.audience import in_quiet_hours as sql_quiet
from app.notifications.outbox import fan_out, record_event
from app.notifications.payloads import GameRecord, live_session
from app.subscriptions.schedule import in_quiet_hours

CLASSES = ("bullet", "blitz", "rapid")
Factory = async_sessionmaker[AsyncSession]
_keys = iter(range(10**9))


def game(time_class: str, rated: bool, end: int = 1_800_000_000) -> GameRecord:
    n = next(_keys)
    return GameRecord(
        event_id=f"g{n}",
        url=f"https://www.chess.com/game/live/{n}",
        end_time=end,
        start_time=end - 300,
        time_class=time_class,
        time_control="180",
        white="hikaru",
        black="someone",
        rated=rated,
    )


async def seed_player(session: AsyncSession) -> None:
    session.add(Player(player_id=1, username="hikaru", name="Hikaru Nakamura"))
    await session.flush()


async def add_sub(
    session: AsyncSession,
    email: str,
    *,
    classes: Sequence[str] = CLASSES,
    rated_only: bool = False,
    paused: bool = False,
) -> int:
    sub = EmailSubscription(
        email=email,
        player_id=1,
        is_active=True,
        confirmed_at=datetime.now(UTC),
        time_classes=list(classes),
        rated_only=rated_only,
        paused=paused,
    )
    session.add(sub)
    await session.flush()
    return sub.id


async def session_event(session: AsyncSession, games: Sequence[GameRecord]) -> int:
    payload = live_session("hikaru", None, games[0].start_time, games)
    return await record_event(
        session, NotificationType.live_match, games[0].event_id, payload, player_id=1
    )


async def rows(session: AsyncSession, event_id: int) -> dict[int, tuple[str, str | None]]:
    result = await session.execute(
        select(
            NotificationLog.subscription_id, NotificationLog.status, NotificationLog.error_message
        ).where(NotificationLog.event_id == event_id)
    )
    return {sub: (status, note) for sub, status, note in result.all()}


def passes(classes: Sequence[str], rated_only: bool, games: Sequence[tuple[str, bool]]) -> bool:
    return any(tc in classes and (rated or not rated_only) for tc, rated in games)


# -- filters and pause ------------------------------------------------------------------


async def test_filters_and_pause_decide_who_gets_a_row(session_factory: Factory) -> None:
    async with session_factory() as s, s.begin():
        await seed_player(s)
        everything = await add_sub(s, "all@example.com")
        rapid = await add_sub(s, "rapid@example.com", classes=["rapid"])
        rated_blitz = await add_sub(s, "rb@example.com", classes=["blitz"], rated_only=True)
        paused = await add_sub(s, "paused@example.com", paused=True)
        casual_blitz = await session_event(s, [game("blitz", rated=False)])
        assert await fan_out(s, casual_blitz) == 1
        assert set(await rows(s, casual_blitz)) == {everything}
        mixed = await session_event(s, [game("bullet", rated=False), game("rapid", rated=True)])
        await fan_out(s, mixed)
        assert set(await rows(s, mixed)) == {everything, rapid}
        rated = await session_event(s, [game("blitz", rated=True)])
        await fan_out(s, rated)
        assert set(await rows(s, rated)) == {everything, rated_blitz}
        assert paused not in await rows(s, rated)
        # Fanning out again adds nothing.
        assert await fan_out(s, rated) == 0


SUBSCRIBERS = st.lists(
    st.tuples(
        st.sets(st.sampled_from(CLASSES), min_size=1).map(sorted),
        st.booleans(),  # rated_only
        st.booleans(),  # paused
    ),
    min_size=1,
    max_size=8,
)
GAMES = st.lists(
    st.tuples(st.sampled_from((*CLASSES, "daily")), st.booleans()), min_size=1, max_size=6
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(subscribers=SUBSCRIBERS, games=GAMES)
def test_no_filtered_out_session_ever_reaches_a_subscriber(
    clean_db: str,
    subscribers: list[tuple[list[str], bool, bool]],
    games: list[tuple[str, bool]],
) -> None:
    """Property: a subscriber gets a row for a session exactly when it is not paused and
    one game passes its filters; and delivery sends only rows that exist."""

    async def check() -> None:
        engine = create_async_engine(clean_db, poolclass=NullPool)
        try:
            async with async_sessionmaker(engine)() as s, s.begin():
                await seed_player(s)
                expected = set()
                for i, (classes, rated_only, paused) in enumerate(subscribers):
                    sub = await add_sub(
                        s,
                        f"f{i}@example.com",
                        classes=classes,
                        rated_only=rated_only,
                        paused=paused,
                    )
                    if not paused and passes(classes, rated_only, games):
                        expected.add(sub)
                event = await session_event(s, [game(tc, r) for tc, r in games])
                await fan_out(s, event)
                assert set(await rows(s, event)) == expected
                await s.rollback()
        finally:
            await engine.dispose()

    asyncio.run(check())


# -- quiet hours and digest mode ----------------------------------------------------------


async def set_prefs(
    s: AsyncSession,
    email: str,
    tz: str,
    quiet: tuple[str, str] | None = None,
    mode: str = "immediate",
) -> None:
    await s.execute(delete(SubscriberPreferences).where(SubscriberPreferences.email == email))
    s.add(
        SubscriberPreferences(
            email=email,
            timezone=tz,
            delivery_mode=mode,
            quiet_start=time.fromisoformat(quiet[0]) if quiet else None,
            quiet_end=time.fromisoformat(quiet[1]) if quiet else None,
        )
    )
    await s.flush()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "quiet", "instant", "skipped"),
    [
        # Berlin, the day before spring forward (CET, UTC+1): quiet 22:00-07:00.
        ("Europe/Berlin", ("22:00", "07:00"), "2026-03-28T05:59:59", True),
        ("Europe/Berlin", ("22:00", "07:00"), "2026-03-28T06:00:00", False),
        ("Europe/Berlin", ("22:00", "07:00"), "2026-03-28T20:59:59", False),
        ("Europe/Berlin", ("22:00", "07:00"), "2026-03-28T21:00:00", True),
        # The day of the change (03:00 CEST = 01:00 UTC): 07:00 local is 05:00 UTC now.
        ("Europe/Berlin", ("22:00", "07:00"), "2026-03-29T04:59:59", True),
        ("Europe/Berlin", ("22:00", "07:00"), "2026-03-29T05:00:00", False),
        # Quiet hours that start inside the skipped hour: 02:30-04:00 begins at 03:00 CEST.
        ("Europe/Berlin", ("02:30", "04:00"), "2026-03-29T00:59:59", False),
        ("Europe/Berlin", ("02:30", "04:00"), "2026-03-29T01:00:00", True),
        ("Europe/Berlin", ("02:30", "04:00"), "2026-03-29T01:59:59", True),
        ("Europe/Berlin", ("02:30", "04:00"), "2026-03-29T02:00:00", False),
        # Fall back (2026-10-25, 03:00 CEST -> 02:00 CET): 02:00-02:59 happens twice.
        ("Europe/Berlin", ("02:00", "03:00"), "2026-10-25T00:30:00", True),
        ("Europe/Berlin", ("02:00", "03:00"), "2026-10-25T01:30:00", True),
        ("Europe/Berlin", ("02:00", "03:00"), "2026-10-25T02:00:00", False),
        # Kolkata, UTC+05:30 all year: quiet 23:00-06:30.
        ("Asia/Kolkata", ("23:00", "06:30"), "2026-11-27T00:59:59", True),
        ("Asia/Kolkata", ("23:00", "06:30"), "2026-11-27T01:00:00", False),
        ("Asia/Kolkata", ("23:00", "06:30"), "2026-11-27T17:29:59", False),
        ("Asia/Kolkata", ("23:00", "06:30"), "2026-11-27T17:30:00", True),
        # Not wrapping midnight: 13:00-14:00 Kolkata is 07:30-08:30 UTC.
        ("Asia/Kolkata", ("13:00", "14:00"), "2026-11-27T07:29:59", False),
        ("Asia/Kolkata", ("13:00", "14:00"), "2026-11-27T07:30:00", True),
        ("Asia/Kolkata", ("13:00", "14:00"), "2026-11-27T08:30:00", False),
    ],
)
async def test_quiet_hours_skip_and_log_at_their_local_boundaries(
    session_factory: Factory, tz: str, quiet: tuple[str, str], instant: str, skipped: bool
) -> None:
    now = utc(instant)
    start, end = (time.fromisoformat(q) for q in quiet)
    assert in_quiet_hours(now, tz, start, end) is skipped  # the Python reference agrees
    async with session_factory() as s, s.begin():
        await seed_player(s)
        sub = await add_sub(s, "night@example.com")
        other = await add_sub(s, "day@example.com")
        await set_prefs(s, "night@example.com", tz, quiet)
        event = await session_event(s, [game("blitz", True)])
        await fan_out(s, event, now=now)
        got = await rows(s, event)
    assert got[other] == ("pending", None)
    assert got[sub] == (("skipped", "skipped: quiet hours") if skipped else ("pending", None))


async def test_digest_subscribers_get_held_rows_not_emails(session_factory: Factory) -> None:
    async with session_factory() as s, s.begin():
        await seed_player(s)
        digest = await add_sub(s, "digest@example.com")
        filtered = await add_sub(s, "digest2@example.com", classes=["rapid"])
        await set_prefs(s, "digest@example.com", "Asia/Kolkata", ("00:00", "23:59"), "digest")
        await set_prefs(s, "digest2@example.com", "UTC", None, "digest")
        event = await session_event(s, [game("blitz", True)])
        await fan_out(s, event)
        assert await rows(s, event) == {digest: ("held", None)}  # filters apply to digests
        assert filtered not in await rows(s, event)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    instant=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    tz=st.sampled_from(["Europe/Berlin", "Asia/Kolkata", "America/New_York", "UTC"]),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_sql_quiet_hours_agree_with_zoneinfo(
    clean_db: str, instant: datetime, tz: str, start: time, end: time
) -> None:
    """PostgreSQL's time zone arithmetic and Python's zoneinfo give the same answer."""

    async def check() -> None:
        engine = create_async_engine(clean_db, poolclass=NullPool)
        try:
            async with async_sessionmaker(engine)() as s, s.begin():
                p = aliased(SubscriberPreferences)
                s.add(
                    SubscriberPreferences(
                        email="q@example.com",
                        timezone=tz,
                        quiet_start=start if start != end else None,
                        quiet_end=end if start != end else None,
                    )
                )
                await s.flush()
                got = await s.scalar(select(sql_quiet(p, literal(instant))).select_from(p))
                await s.rollback()
        finally:
            await engine.dispose()
        expected = in_quiet_hours(instant, tz, start, end) if start != end else False
        assert bool(got) is expected

    asyncio.run(check())


async def test_events_table_is_not_touched_by_filters(session_factory: Factory) -> None:
    """A session nobody hears about is still recorded once (digests and history use it)."""
    async with session_factory() as s, s.begin():
        await seed_player(s)
        await add_sub(s, "rapid@example.com", classes=["rapid"])
        event = await session_event(s, [game("bullet", True)])
        assert await fan_out(s, event) == 0
        assert await s.get(Event, event) is not None
