"""Fan-out (SPEC §5, §7): one event row, one outbox row per deliverable subscriber, one
statement whatever the audience size, and the idempotency key still holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.models import Event, NotificationLog, NotificationType, Player
from app.notifications.outbox import fan_out, record_event
from app.notifications.payloads import GameRecord, LiveSession, live_session, load_payload

pytestmark = pytest.mark.usefixtures("clean_db")

GAMES = [
    GameRecord("g2", "https://www.chess.com/game/live/2", 2000, 1800, "bullet", "60", rated=False),
    GameRecord("g1", "https://www.chess.com/game/live/1", 1000, 800, "blitz", "180+2", rated=True),
]


async def seed(factory: async_sessionmaker[AsyncSession], deliverable: int) -> None:
    """`deliverable` confirmed active subscribers of hikaru, plus some who must not get it."""
    async with factory() as s, s.begin():
        s.add_all([Player(player_id=1, username="hikaru"), Player(player_id=2, username="anna")])
        await s.flush()
        await s.execute(
            text(
                "INSERT INTO email_subscriptions (email, player_id, is_active, confirmed_at) "
                "SELECT 'fan' || i || '@example.com', 1, true, now() "
                "FROM generate_series(1, :n) AS i"
            ),
            {"n": deliverable},
        )
        await s.execute(
            text(
                "INSERT INTO email_subscriptions (email, player_id, is_active, confirmed_at) "
                "VALUES ('unconfirmed@example.com', 1, true, NULL), "
                "('gone@example.com', 1, false, now()), "
                "('other@example.com', 2, true, now())"
            )
        )


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent to the database, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        seen.append((sql, params))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_one_event_one_row_per_deliverable_subscriber_in_one_statement(
    session_factory: async_sessionmaker[AsyncSession], statements: list[tuple[str, Any]]
) -> None:
    await seed(session_factory, 5000)  # above 4,681: the old per-row binds broke here
    payload = live_session("hikaru", "Hikaru Nakamura", 800, GAMES)
    statements.clear()
    async with session_factory() as s, s.begin():
        event_id = await record_event(s, NotificationType.live_match, "g1", payload, player_id=1)
        assert await fan_out(s, event_id) == 5000

    # record_event, the INSERT … SELECT, the NOTIFY: nothing grows with the audience.
    inserts = [(sql, p) for sql, p in statements if "INSERT INTO notification_logs" in sql]
    assert len(inserts) == 1
    sql, params = inserts[0]
    assert "SELECT" in sql and len(params) < 10, (sql, params)

    async with session_factory() as s:
        assert await s.scalar(select(func.count()).select_from(Event)) == 1
        stored = await s.scalar(select(Event))
        assert stored is not None
        assert stored.time_classes == ["blitz", "bullet"]
        assert stored.rated_time_classes == ["blitz"]
        loaded = load_payload(stored.kind, stored.payload)
        assert isinstance(loaded, LiveSession)
        assert [g.event_id for g in loaded.games] == ["g1", "g2"]  # in the order they ended
        rows = (
            await s.execute(
                text(
                    "SELECT count(*) AS n, count(DISTINCT subscription_id) AS subs, "
                    "bool_and(status = 'pending') AS pending, "
                    "bool_and(notification_type = 'live_match') AS typed "
                    "FROM notification_logs WHERE event_id = :e"
                ),
                {"e": event_id},
            )
        ).one()
        assert (rows.n, rows.subs, rows.pending, rows.typed) == (5000, 5000, True, True)
        emails = set(
            (
                await s.scalars(
                    text(
                        "SELECT s.email FROM notification_logs n "
                        "JOIN email_subscriptions s ON s.id = n.subscription_id"
                    )
                )
            ).all()
        )
        assert not emails & {"unconfirmed@example.com", "gone@example.com", "other@example.com"}


async def test_the_same_event_again_adds_nothing(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await seed(session_factory, 3)
    payload = live_session("hikaru", None, 800, GAMES)
    for expected in (3, 0):
        async with session_factory() as s, s.begin():
            event_id = await record_event(
                s, NotificationType.live_match, "g1", payload, player_id=1
            )
            assert await fan_out(s, event_id) == expected
    async with session_factory() as s:
        assert await s.scalar(select(func.count()).select_from(Event)) == 1
        assert await s.scalar(select(func.count()).select_from(NotificationLog)) == 3


async def test_fan_out_wakes_the_worker_only_when_it_queued_something(
    session_factory: async_sessionmaker[AsyncSession], statements: list[tuple[str, Any]]
) -> None:
    await seed(session_factory, 0)
    statements.clear()
    async with session_factory() as s, s.begin():
        event_id = await record_event(
            s,
            NotificationType.live_match,
            "g1",
            live_session("hikaru", None, 800, GAMES),
            player_id=1,
        )
        assert await fan_out(s, event_id) == 0
    assert not [sql for sql, _ in statements if "pg_notify" in sql]
