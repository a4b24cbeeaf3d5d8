"""Delivery leases (SPEC §7: nothing doubled): a worker sends only rows it still holds.

A worker claims a batch, then sends it a few at a time. If a row's lease runs out
while it waits its turn (a slow SMTP server, a paused process), another worker may
claim and send it; the first must then leave it alone.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select, text

from app.config import Settings
from app.models import NotificationType, Player
from app.notifications.outbox import request_event
from tests.worker.conftest import WorkerFactory, World

pytestmark = pytest.mark.usefixtures("clean_db")

LEASE = 1  # seconds: the smallest lease the settings allow


@pytest.fixture
def settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(update={"delivery_lease_seconds": LEASE})


async def queue_confirmations(world: World, n: int) -> None:
    await world.track("hikaru")
    for i in range(n):
        sub = await world.subscribe(f"fan{i}@example.com", "hikaru", confirmed=False)
        async with world.factory() as s, s.begin():
            player = await s.scalar(select(Player.player_id).where(Player.username == "hikaru"))
            await request_event(
                s, NotificationType.confirmation, f"confirm:{i}", sub, player_id=player
            )


async def test_rows_whose_lease_ran_out_are_left_to_the_worker_that_claimed_them_next(
    world: World, make_worker: WorkerFactory, settings: Settings
) -> None:
    await queue_confirmations(world, 3)
    first, second = make_worker(settings), make_worker(settings)

    stale = await first.deliverer.claim(limit=10)
    assert len(stale) == 3
    await asyncio.sleep(LEASE + 0.2)  # the first worker stalls past its leases
    fresh = await second.deliverer.claim(limit=10)
    assert sorted(r.id for r in fresh) == sorted(r.id for r in stale)

    assert await asyncio.gather(*(second.deliverer.deliver(r) for r in fresh)) == [True] * 3
    # The first worker wakes up: its rows are someone else's now.
    assert await asyncio.gather(*(first.deliverer.deliver(r) for r in stale)) == [False] * 3

    per_recipient = Counter(rcpt for m in world.smtp.messages for rcpt in m.rcpt_tos)
    assert per_recipient == {f"fan{i}@example.com": 1 for i in range(3)}
    logs = await world.logs()
    assert {(log.status, log.attempts) for log in logs} == {("sent", 2)}


async def test_a_row_still_leased_is_sent_after_waiting_its_turn(
    world: World, make_worker: WorkerFactory, settings: Settings
) -> None:
    await queue_confirmations(world, 2)
    worker = make_worker(settings)
    rows = await worker.deliverer.claim(limit=10)
    # Waiting is fine while the lease holds; past half of it, the send first takes the
    # lease afresh (still ours: nobody claimed it).
    await asyncio.sleep(LEASE * 0.6)
    assert [await worker.deliverer.deliver(r) for r in rows] == [True, True]
    assert len(world.smtp.messages) == 2
    async with world.factory() as s:
        leased = await s.scalar(
            text("SELECT count(*) FROM notification_logs WHERE locked_until IS NOT NULL")
        )
    assert leased == 0
