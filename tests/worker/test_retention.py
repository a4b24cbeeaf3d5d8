"""Retention (issue 10 item 2, SPEC §3): sent and failed logs older than
NOTIFICATION_RETENTION_DAYS go, in small batches; pending rows never do."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.notifications.retention import prune
from tests.security.test_tokens_cli import cli
from tests.worker.conftest import WorkerFactory, World

pytestmark = pytest.mark.usefixtures("clean_db")


async def write(world: World, sql: str, **params: object) -> None:
    async with world.factory() as s, s.begin():
        await s.execute(text(sql), params)


async def seed(world: World) -> None:
    """Per status, rows aged 100 days and 10 days (retention: 90)."""
    await world.track("hikaru")
    sub = await world.subscribe("fan@example.com", "hikaru")
    await write(
        world,
        "WITH ev AS ("
        " INSERT INTO events (kind, player_id, key, created_at) "
        " SELECT 'live_match', s.player_id, st || '-' || age || '-' || g, "
        "        now() - make_interval(days => age) "
        " FROM email_subscriptions s, unnest(ARRAY['sent', 'failed', 'pending']) st, "
        "      unnest(ARRAY[100, 10]) age, generate_series(1, 5) g "
        " WHERE s.id = :sub RETURNING id, key, created_at) "
        "INSERT INTO notification_logs "
        "(subscription_id, event_id, notification_type, status, created_at) "
        "SELECT :sub, ev.id, 'live_match', split_part(ev.key, '-', 1), ev.created_at "
        "FROM ev",
        sub=sub,
    )


async def rows_of(world: World, sql: str) -> list[tuple[Any, ...]]:
    async with world.factory() as s:
        return [tuple(r) for r in await s.execute(text(sql))]


async def remaining(world: World) -> list[tuple[Any, ...]]:
    """Outbox rows left, counted by status and by age (older than 90 days or not)."""
    return await rows_of(
        world,
        "SELECT status, created_at < now() - interval '90 days' AS old, count(*) "
        "FROM notification_logs GROUP BY 1, 2 ORDER BY 1, 2",
    )


async def test_prune_deletes_old_sent_and_failed_in_batches_and_keeps_pending(
    world: World,
) -> None:
    await seed(world)
    report = await prune(world.factory, 90, batch_size=3)  # 10 rows: four batches
    assert report.deleted["notification_logs"] == 10
    assert await remaining(world) == [
        ("failed", False, 5),
        ("pending", False, 5),
        ("pending", True, 5),  # never pruned, however old
        ("sent", False, 5),
    ]
    again = await prune(world.factory, 90)
    assert again.total == 0


async def events_left(world: World) -> list[tuple[Any, ...]]:
    """Events left, counted by age (older than 90 days or not)."""
    return await rows_of(
        world,
        "SELECT created_at < now() - interval '90 days' AS old, count(*) FROM events "
        "GROUP BY 1 ORDER BY 1",
    )


async def test_events_nothing_refers_to_any_more_go_too(world: World) -> None:
    await seed(world)
    # An old event shared by an old sent row and a recent one stays for the recent one.
    await write(
        world,
        "UPDATE notification_logs SET notification_type = 'confirmation', event_id = ("
        "  SELECT event_id FROM notification_logs WHERE status = 'sent' "
        "  AND created_at < now() - interval '90 days' ORDER BY id LIMIT 1) "
        "WHERE id = (SELECT min(id) FROM notification_logs WHERE status = 'sent' "
        "  AND created_at > now() - interval '90 days')",
    )
    report = await prune(world.factory, 90, batch_size=4)
    assert report.deleted == {
        "notification_logs": 10,
        "events": 9,
        "unbound telegram subscriptions": 0,
    }
    # Left: 5 old events of pending rows, the shared one, and all 15 recent ones (one of
    # them no longer referenced, but not old).
    assert await events_left(world) == [(False, 15), (True, 6)]


async def test_cli_prune_dry_run_reports_and_deletes_nothing(world: World, clean_db: str) -> None:
    await seed(world)
    before = await remaining(world)
    run = await cli(clean_db, "prune", "--dry-run")
    assert run.code == 0, run.stderr
    assert "would delete 10 notification_logs, 10 events" in run.stdout
    assert "90 days" in run.stdout
    assert await remaining(world) == before

    run = await cli(clean_db, "prune")
    assert run.code == 0, run.stderr
    assert "deleted 10 notification_logs, 10 events" in run.stdout
    assert ("sent", True, 5) not in await remaining(world)


async def test_telegram_rows_whose_link_expired_unopened_go(world: World) -> None:
    """SPEC §11: each `telegram: true` request makes a pending row for its deep link;
    once the link (7 days) has expired unopened no chat can bind it, so retention drops
    it. Bound or younger rows stay."""
    await world.track("hikaru")
    await write(
        world,
        "INSERT INTO email_subscriptions (channel, player_id, is_active, telegram_chat_id, "
        " confirmed_at, created_at) "
        "SELECT 'telegram', p.player_id, true, chat, "
        "       CASE WHEN chat IS NULL THEN NULL ELSE now() END, "
        "       now() - make_interval(days => age) "
        "FROM players p, unnest(ARRAY[9, 7]) age, unnest(ARRAY[NULL, 42, 43]::bigint[]) chat "
        "WHERE p.username = 'hikaru' AND (chat IS NULL OR chat - 42 = (age - 7) / 2)",
    )
    dry = await prune(world.factory, 90, dry_run=True)
    assert dry.deleted["unbound telegram subscriptions"] == 1
    report = await prune(world.factory, 90)
    assert report.deleted["unbound telegram subscriptions"] == 1
    left = await rows_of(
        world,
        "SELECT telegram_chat_id, created_at < now() - interval '8 days' AS expired "
        "FROM email_subscriptions WHERE channel = 'telegram' ORDER BY 2, 1",
    )
    assert left == [(42, False), (None, False), (43, True)]


async def test_the_worker_prunes_at_start(world: World, make_worker: WorkerFactory) -> None:
    await seed(world)
    worker = make_worker()
    await worker.prune()
    assert all(not old or status == "pending" for status, old, _ in await remaining(world))
