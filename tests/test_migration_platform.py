"""The players-platform migration (issue 19): every existing player becomes a Chess.com
player and keeps its id, subscriptions, events, outbox rows and poll state; downgrading
returns the old shape (and only the Lichess players, which it cannot hold, go)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests import db

BEFORE = "push_and_telegram"
PLATFORM = "players_platform"


@pytest.fixture
async def scratch(scratch_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    await db.upgrade(scratch_url, BEFORE)
    connection = await asyncpg.connect(db.asyncpg_dsn(scratch_url))
    try:
        yield scratch_url, connection
    finally:
        await connection.close()


async def seed(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO players (player_id, username, archive_etags, detection_state, "
        "last_polled_at, next_poll_at, failure_count, is_playing) VALUES "
        '(15448422, \'hikaru\', \'{"2026/12": "\\"abc\\""}\', \'{"baseline_done": true}\', '
        " '2026-12-01T10:00:00Z', '2026-12-01T10:05:00Z', 2, true), "
        "(2, 'anna', '{}', '{}', NULL, '2026-12-01T10:00:00Z', 0, false)"
    )
    sub = await conn.fetchval(
        "INSERT INTO email_subscriptions (email, player_id, confirmed_at) "
        "VALUES ('fan@example.com', 15448422, now()) RETURNING id"
    )
    event = await conn.fetchval(
        "INSERT INTO events (kind, player_id, key, payload) "
        "VALUES ('live_match', 15448422, 'uuid-1', $1::jsonb) RETURNING id",
        json.dumps({"username": "hikaru", "name": None, "started_at": 1, "games": []}),
    )
    await conn.execute(
        "INSERT INTO notification_logs (subscription_id, event_id, notification_type, status) "
        "VALUES ($1, $2, 'live_match', 'pending')",
        sub,
        event,
    )


SNAPSHOT = {
    "players": "SELECT player_id, username, archive_etags, detection_state, last_polled_at, "
    "next_poll_at, failure_count, is_playing FROM players ORDER BY player_id",
    "subscriptions": "SELECT id, email, player_id FROM email_subscriptions ORDER BY id",
    "events": "SELECT id, kind, player_id, key, payload FROM events ORDER BY id",
    "outbox": "SELECT subscription_id, event_id, notification_type, status "
    "FROM notification_logs ORDER BY id",
}


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in SNAPSHOT.items()}


async def test_existing_players_become_chesscom_players_and_lose_nothing(
    scratch: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = scratch
    await seed(conn)
    before = await snapshot(conn)
    await db.upgrade(url, PLATFORM)
    assert await snapshot(conn) == before
    rows = await conn.fetch("SELECT platform, key, username FROM players ORDER BY player_id")
    assert [tuple(r) for r in rows] == [
        ("chesscom", "anna", "anna"),
        ("chesscom", "hikaru", "hikaru"),
    ]
    # A Lichess player of the same name is another player, with an id of its own kind.
    lichess_id = await conn.fetchval(
        "INSERT INTO players (player_id, platform, username, next_poll_at) "
        "VALUES (nextval('players_lichess_id_seq'), 'lichess', 'hikaru', 'infinity') "
        "RETURNING player_id"
    )
    assert lichess_id == -1
    assert await conn.fetchval("SELECT key FROM players WHERE player_id = -1") == "lichess:hikaru"
    with pytest.raises(asyncpg.CheckViolationError):  # ids never cross platforms
        await conn.execute(
            "INSERT INTO players (player_id, platform, username) VALUES (7, 'lichess', 'x7')"
        )
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO players (player_id, platform, username) VALUES (8, 'chesscom', 'anna')"
        )

    await db.downgrade(url, BEFORE)
    assert await snapshot(conn) == before  # the Lichess player went, nothing else did
    await db.upgrade(url, PLATFORM)
    assert await snapshot(conn) == before
