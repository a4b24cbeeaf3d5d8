"""The events migration moves existing outbox rows, pending and sent, and back again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from app.notifications.payloads import LiveSession, load_payload
from tests import db

BEFORE = "0001"
EVENTS = "0002_events"

GAMES = [
    {
        "url": "https://www.chess.com/game/live/101",
        "time_class": "blitz",
        "time_control": "180+2",
        "opponent": "MagnusCarlsen",
        "opponent_rating": 2830,
        "result": "win",
        "end_time": "2026-11-21T20:15:02+00:00",
    },
    {
        "url": "https://www.chess.com/game/live/102",
        "time_class": "bullet",
        "time_control": "60",
        "opponent": "Firouzja2003",
        "opponent_rating": None,
        "result": None,
        "end_time": "2026-11-21T20:20:00+00:00",
    },
]
SESSION = {
    "username": "hikaru",
    "name": "Hikaru Nakamura",
    "started_at": 1795292000,
    "games": GAMES,
}


@pytest.fixture
async def scratch(scratch_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A database of its own at the revision before events."""
    await db.upgrade(scratch_url, BEFORE)
    connection = await asyncpg.connect(db.asyncpg_dsn(scratch_url))
    try:
        yield scratch_url, connection
    finally:
        await connection.close()


async def seed_old_rows(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    await conn.execute(
        "INSERT INTO players (player_id, username) VALUES (1, 'hikaru'), (2, 'anna')"
    )
    subs = [
        await conn.fetchval(
            "INSERT INTO email_subscriptions (email, player_id, confirmed_at) "
            "VALUES ($1, $2, now()) RETURNING id",
            email,
            player,
        )
        for email, player in [("a@example.com", 1), ("b@example.com", 1), ("a@example.com", 2)]
    ]
    rows = [
        # One session of hikaru, two subscribers: one already sent, one pending.
        (subs[0], "uuid-101", "live_match", "sent", SESSION),
        (subs[1], "uuid-101", "live_match", "pending", SESSION),
        # An older session, sent to one of them.
        (subs[0], "uuid-050", "live_match", "sent", {**SESSION, "games": GAMES[:1]}),
        # A confirmation and an erase request.
        (subs[2], "confirm:abc", "confirmation", "pending", {}),
        (subs[2], "erase:def", "erase_request", "failed", {}),
    ]
    for sub, event, kind, status, payload in rows:
        await conn.execute(
            "INSERT INTO notification_logs "
            "(subscription_id, event_id, notification_type, status, success, attempts, payload) "
            "VALUES ($1, $2, $3, $4::varchar, $4::varchar = 'sent', 1, $5::jsonb)",
            sub,
            event,
            kind,
            status,
            json.dumps(payload),
        )
    return [dict(r) for r in await conn.fetch("SELECT * FROM notification_logs ORDER BY id")]


def same_payload(old: dict[str, Any], back: dict[str, Any]) -> bool:
    """Equal once end times are compared as instants (their text form may differ)."""

    def norm(p: dict[str, Any]) -> dict[str, Any]:
        games = [
            {**g, "end_time": datetime.fromisoformat(g["end_time"]).timestamp()}
            for g in p.get("games", [])
        ]
        return {**p, "games": games} if p else p

    return norm(old) == norm(back)


async def test_rows_move_to_events_and_back(scratch: tuple[str, asyncpg.Connection]) -> None:
    url, conn = scratch
    before = await seed_old_rows(conn)

    await db.upgrade(url, EVENTS)
    events = await conn.fetch("SELECT * FROM events ORDER BY id")
    # Four things happened: two sessions, one confirmation request, one erase request.
    assert sorted((e["kind"], e["key"]) for e in events) == sorted(
        [
            ("live_match", "uuid-101"),
            ("live_match", "uuid-050"),
            ("confirmation", "confirm:abc"),
            ("erase_request", "erase:def"),
        ]
    )
    logs = await conn.fetch(
        "SELECT n.*, e.key, e.kind FROM notification_logs n JOIN events e ON e.id = n.event_id "
        "ORDER BY n.id"
    )
    # Every row survived with its state, pointing at its event; nothing else changed.
    assert [
        (r["id"], r["subscription_id"], r["key"], r["status"], r["attempts"]) for r in logs
    ] == [
        (r["id"], r["subscription_id"], r["event_id"], r["status"], r["attempts"]) for r in before
    ]
    assert all(r["kind"] == r["notification_type"] for r in logs)
    # The session's payload is stored once and reads as the one typed payload.
    session = next(e for e in events if e["key"] == "uuid-101")
    assert sum(1 for r in logs if r["event_id"] == session["id"]) == 2
    payload = load_payload("live_match", json.loads(session["payload"]))
    assert isinstance(payload, LiveSession)
    assert payload.username == "hikaru" and payload.name == "Hikaru Nakamura"
    assert [g.url for g in payload.games] == [g["url"] for g in GAMES]
    assert payload.games[0].event_id == "uuid-101"
    assert (payload.games[0].white, payload.games[0].black) == ("hikaru", "MagnusCarlsen")
    assert payload.games[0].black_rating == 2830 and payload.games[0].white_result == "win"
    assert payload.games[1].end_time == 1795292400
    assert sorted(session["time_classes"]) == ["blitz", "bullet"]
    # The idempotency key still holds on the moved rows.
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO notification_logs (subscription_id, event_id) VALUES ($1, $2)",
            before[0]["subscription_id"],
            session["id"],
        )

    await db.downgrade(url, BEFORE)
    after = [dict(r) for r in await conn.fetch("SELECT * FROM notification_logs ORDER BY id")]
    assert [{k: v for k, v in r.items() if k != "payload"} for r in after] == [
        {k: v for k, v in r.items() if k != "payload"} for r in before
    ]
    for old, back in zip(before, after, strict=True):
        assert same_payload(json.loads(old["payload"]), json.loads(back["payload"]))
    assert "events" not in {
        r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")
    }
