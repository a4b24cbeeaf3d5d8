"""The write path's round trips: what one new subscription costs the database (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import EmailSubscription, NotificationLog
from tests.fakes.chesscom import ChessComSimulator

pytestmark = pytest.mark.usefixtures("clean_db")


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """Every statement the app's session engine sends while the block runs."""
    factory: async_sessionmaker[AsyncSession] = app.state.session_factory
    engine: Any = factory.kw["bind"].sync_engine
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_new_subscription_costs_four_statements(
    client: httpx.AsyncClient,
    app: FastAPI,
    hikaru: object,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Insert (finding the player in the same statement), address lock, capped stamp,
    event + outbox row + NOTIFY: four statements, down from twelve (plus BEGIN/COMMIT)."""
    await client.post("/api/v1/players", json={"username": "hikaru"})
    with statements(app) as seen:
        r = await client.post(
            "/api/v1/subscriptions", json={"email": "new@example.com", "username": "hikaru"}
        )
    assert r.status_code == 202
    assert len(seen) == 4, seen
    assert seen[0].startswith("INSERT INTO email_subscriptions")
    async with session_factory() as s:
        sub = await s.scalar(
            select(EmailSubscription).where(EmailSubscription.email == "new@example.com")
        )
        assert sub is not None and sub.confirmation_sent_at is not None
        assert sub.is_active and sub.confirmed_at is None
        mine = NotificationLog.subscription_id == sub.id
        logs = (await s.scalars(select(NotificationLog).where(mine))).all()
    assert [(n.notification_type, n.status) for n in logs] == [("confirmation", "pending")]


async def test_the_per_address_cap_stops_the_stamp_and_the_mail(
    client: httpx.AsyncClient,
    app: FastAPI,
    hikaru: object,
    simulator: ChessComSimulator,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Past the daily cap a new subscription is stored, unstamped, with no mail queued."""
    cap = settings.confirmation_emails_per_address_per_day
    names = [f"player{i}" for i in range(cap + 1)]
    for i, name in enumerate(names):
        simulator.add_player(name, player_id=1000 + i)
        r = await client.post(
            "/api/v1/subscriptions", json={"email": "cap@example.com", "username": name}
        )
        assert r.status_code == 202
    async with session_factory() as s:
        subs = (
            await s.scalars(
                select(EmailSubscription)
                .where(EmailSubscription.email == "cap@example.com")
                .order_by(EmailSubscription.id)
            )
        ).all()
        mails = await s.scalar(
            select(func.count(NotificationLog.id))
            .join(EmailSubscription)
            .where(EmailSubscription.email == "cap@example.com")
        )
    assert len(subs) == cap + 1
    assert [s.confirmation_sent_at is not None for s in subs] == [True] * cap + [False]
    assert mails == cap
