"""Delivery keeps its connections busy across batches (issue 9): once half a claimed
batch has gone, the next is claimed in the background, so the senders never stop for
a claim. Memory stays bounded (one and a half batches wait at most), every row is sent
once, and a stop releases what was claimed ahead.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from app.config import Settings
from app.emails.render import Rendered
from app.models import NotificationType
from app.notifications.outbox import fan_out, record_event
from app.notifications.payloads import GameRecord, live_session
from tests.worker.conftest import WorkerFactory, World
from worker.outbox.pipeline import REFILLS, Pipeline
from worker.outbox.store import ClaimedRow
from worker.runner import Worker

pytestmark = pytest.mark.usefixtures("clean_db")

BATCH = 10
_ROW_ID = re.compile(r"^<notification-(\d+)\.")
CONCURRENCY = 3


@pytest.fixture
def settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(
        update={"delivery_batch_size": BATCH, "delivery_concurrency": CONCURRENCY}
    )


async def fan_out_session(world: World, audience: int) -> None:
    """One live session of a player with `audience` confirmed subscribers, fanned out."""
    player_id = await world.track("star")
    async with world.factory() as s, s.begin():
        await s.execute(
            text(
                "INSERT INTO email_subscriptions (email, player_id, is_active, confirmed_at) "
                "SELECT 'fan' || g || '@example.com', :p, true, now() "
                "FROM generate_series(1, :n) g"
            ),
            {"p": player_id, "n": audience},
        )
        now = int(time.time())
        game = GameRecord(
            "uuid-1", "https://www.chess.com/game/live/1", now - 60, now - 300, "blitz", "180",
            "star", "someone", None, None, "win", "resigned", True,
        )  # fmt: skip
        payload = live_session("star", None, now - 300, [game])
        event = await record_event(
            s, NotificationType.live_match, "uuid-1", payload, player_id=player_id
        )
        assert await fan_out(s, event) == audience


class CountingMailer:
    """Accepts every message; at each send, counts the rows claimed and not yet sent
    (waiting in the queue or being rendered by another sender)."""

    def __init__(self, world: World, stop_after: int | None = None) -> None:
        self.world = world
        self.sent: Counter[str] = Counter()
        self.claimed_unsent: list[int] = []
        self.sent_ids: set[int] = set()
        self.stop = asyncio.Event()
        self.stop_after = stop_after

    async def send_raw(self, message: Rendered) -> None:
        async with self.world.factory() as s:
            leased = set(
                await s.scalars(
                    text(
                        "SELECT id FROM notification_logs "
                        "WHERE status = 'pending' AND locked_until IS NOT NULL"
                    )
                )
            )
        self.sent[message.recipient] += 1
        found = _ROW_ID.match(message.message_id)
        assert found is not None
        self.sent_ids.add(int(found.group(1)))
        # Sent rows stay leased until their outcome is recorded: leave them out.
        self.claimed_unsent.append(len(leased - self.sent_ids))
        if self.stop_after is not None and sum(self.sent.values()) >= self.stop_after:
            self.stop.set()

    async def send(self, message: Any) -> None:
        raise AssertionError("delivery sends rendered bytes")

    async def aclose(self) -> None:
        return None


def deliverer_with(worker: Worker, mailer: CountingMailer) -> Pipeline:
    worker.deliverer.channels["email"].mailer = mailer  # type: ignore[attr-defined]
    return worker.deliverer


async def statuses(world: World) -> dict[tuple[str, int, bool], int]:
    async with world.factory() as s:
        rows = await s.execute(
            text(
                "SELECT status, attempts, locked_until IS NOT NULL AS leased, count(*) AS n "
                "FROM notification_logs GROUP BY 1, 2, 3"
            )
        )
        return {(r.status, r.attempts, r.leased): r.n for r in rows}


async def test_the_next_batch_is_claimed_while_one_is_sent(
    world: World, make_worker: WorkerFactory, settings: Settings
) -> None:
    audience = 4 * BATCH + 5
    await fan_out_session(world, audience)
    mailer = CountingMailer(world)
    deliverer = deliverer_with(make_worker(settings), mailer)
    claims: list[int] = []
    claim = deliverer.claim

    async def counted_claim(limit: int | None = None) -> list[ClaimedRow]:
        rows = await claim(limit)
        claims.append(len(rows))
        return rows

    deliverer.claim = counted_claim  # type: ignore[method-assign]

    result = await deliverer.run_batch()

    assert result.claimed == audience, "one call: the next batches were claimed meanwhile"
    assert claims == [BATCH, BATCH, BATCH, BATCH, 5]
    assert result.tally == {"sent": audience}
    assert set(mailer.sent.values()) == {1} and len(mailer.sent) == audience
    assert await statuses(world) == {("sent", 1, False): audience}
    # Bounded: never more than one and a half batches claimed ahead of the senders.
    assert max(mailer.claimed_unsent) <= BATCH + BATCH // 2 + CONCURRENCY


async def test_one_call_claims_a_bounded_number_of_batches(
    world: World, make_worker: WorkerFactory, settings: Settings
) -> None:
    audience = (REFILLS + 3) * BATCH
    await fan_out_session(world, audience)
    mailer = CountingMailer(world)
    deliverer = deliverer_with(make_worker(settings), mailer)

    first = await deliverer.run_batch()
    assert first.claimed == (REFILLS + 1) * BATCH  # then the runner's loop looks around
    second = await deliverer.run_batch()
    assert first.claimed + second.claimed == audience
    assert (await deliverer.run_batch()).claimed == 0
    assert len(mailer.sent) == audience and set(mailer.sent.values()) == {1}


async def test_a_limited_claim_claims_nothing_ahead(
    world: World, make_worker: WorkerFactory, settings: Settings
) -> None:
    """The probe of a mail server that was down takes one row, and only that one."""
    await fan_out_session(world, 3 * BATCH)
    mailer = CountingMailer(world)
    deliverer = deliverer_with(make_worker(settings), mailer)
    assert (await deliverer.run_batch(limit=1)).claimed == 1
    assert (await deliverer.run_batch(limit=BATCH)).claimed == BATCH
    assert sum(mailer.sent.values()) == 1 + BATCH


async def test_a_stop_releases_the_rows_claimed_ahead(
    world: World, make_worker: WorkerFactory, settings: Settings
) -> None:
    audience = 4 * BATCH
    await fan_out_session(world, audience)
    mailer = CountingMailer(world, stop_after=BATCH + 3)  # into the second batch
    deliverer = deliverer_with(make_worker(settings), mailer)

    result = await deliverer.run_batch(mailer.stop)

    sent = sum(mailer.sent.values())
    assert BATCH + 3 <= sent <= BATCH + 3 + CONCURRENCY  # sends in progress finish
    assert result.tally == {"sent": sent}
    # Recorded as sent; everything else back in the queue as if never claimed.
    assert await statuses(world) == {
        ("sent", 1, False): sent,
        ("pending", 0, False): audience - sent,
    }


async def test_a_row_that_cannot_render_fails_with_one_traceback_per_event(
    world: World,
    make_worker: WorkerFactory,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A render error fails the row (it would never render); the log carries its
    traceback once for the event, not once per recipient."""
    await fan_out_session(world, 5)
    worker = make_worker(settings)
    email = worker.deliverer.channels["email"]

    def broken(prepared: object, delivery: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(email, "render", broken)
    with caplog.at_level("WARNING", logger="worker.outbox.pipeline"):
        result = await worker.deliverer.run_batch()
    assert result.claimed == 5
    assert await statuses(world) == {("failed", 1, False): 5}
    about = [r for r in caplog.records if "cannot render" in r.getMessage()]
    assert len(about) == 5
    assert sum(r.exc_info is not None for r in about) == 1
    async with world.factory() as s:
        errors = set(await s.scalars(text("SELECT error_message FROM notification_logs")))
    assert errors == {"render error: ValueError: boom"}
