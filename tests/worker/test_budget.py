"""The schedule in PostgreSQL: the claim's SQL order is worker.schedule's, the shared
request budget spaces requests across processes, and polls teach the activity profile."""

from __future__ import annotations

import asyncio
import math
import random
import time
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Player
from tests.worker.conftest import NOW, WorkerFactory, World
from worker.budget import RequestBudget
from worker.schedule import JITTER, Activity, Candidate, Policy, choose, quantize, slot_spacing
from worker.scheduler import claim_players

pytestmark = pytest.mark.usefixtures("clean_db")

POLICY = Policy(300, 1800, max_wait_seconds=600, requests_per_second=1000)


async def test_the_claim_orders_like_the_pure_schedule(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    rng = random.Random(5)
    async with session_factory() as s, s.begin():
        now = await s.scalar(text("SELECT now()"))
        assert now is not None
        for i in range(120):
            last = now - timedelta(seconds=rng.choice([rng.uniform(0, 1200), 30, 900]))
            s.add(
                Player(
                    player_id=i + 1,
                    username=f"p{i}",
                    last_polled_at=None if i % 17 == 0 else last,
                    next_poll_at=last + timedelta(seconds=rng.uniform(0, 600)),
                    # 0: a row never planned (overdue whenever it is due).
                    poll_rate=0.0
                    if i % 11 == 5
                    else quantize(rng.choice([1e-6, 1e-4, rng.uniform(1e-7, 1e-2)])),
                )
            )
    async with session_factory() as s, s.begin():
        now = await s.scalar(text("SELECT now()"))
        assert now is not None
        rows = (
            await s.execute(
                text("SELECT player_id, next_poll_at, last_polled_at, poll_rate FROM players")
            )
        ).all()
        expected = choose(
            [
                Candidate(
                    r.player_id,
                    r.next_poll_at.timestamp(),
                    None if r.last_polled_at is None else r.last_polled_at.timestamp(),
                    r.poll_rate,
                )
                for r in rows
            ],
            now=now.timestamp(),
            limit=1000,
            policy=POLICY,
        )
        claimed = await claim_players(s, limit=1000, policy=POLICY)
    assert len(expected) > 40
    assert [c.player_id for c in claimed] == [c.player_id for c in expected]


async def test_a_claim_takes_only_a_few_seconds_of_budget(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as s, s.begin():
        for i in range(50):
            s.add(Player(player_id=i + 1, username=f"p{i}"))
    slow = Policy(300, 1800, requests_per_second=2)
    async with session_factory() as s, s.begin():
        assert len(await claim_players(s, limit=100, policy=slow)) == 2  # 1 s at 2/s


async def test_polls_learn_the_activity_and_plan_by_it(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.track("hikaru")
    await world.track("sleepy")
    for day in range(1, 15):
        world.sim.add_game("hikaru", end_time=NOW - day * 86400)
    world.sim.add_game("hikaru", end_time=NOW - 120)  # in a session now
    worker = make_worker()
    await worker.run_once()
    # The schedule knows how many players the budget serves (Policy.idle_floor).
    assert worker.poller.policy.tracked_players == 2
    hikaru, sleepy = await world.player("hikaru"), await world.player("sleepy")
    activity = Activity.from_json(hikaru.activity)
    assert sum(activity.weights.values()) == pytest.approx(15, rel=0.5)
    assert activity.last_end == NOW - 120
    assert hikaru.poll_rate > 100 * sleepy.poll_rate > 0
    # In a session: polled when the next game is expected to end (a typical game
    # length after the last one's end), at the latest after POLL_INTERVAL_SECONDS.
    assert hikaru.next_poll_at - hikaru.last_polled_at <= timedelta(seconds=300)
    assert sleepy.next_poll_at - sleepy.last_polled_at > timedelta(seconds=300)


async def test_more_subscribers_bring_the_next_poll_forward(
    world: World, make_worker: WorkerFactory
) -> None:
    for name in ("alone", "popular"):
        await world.track(name)
        world.sim.add_game(name, end_time=NOW - 5 * 86400)
    for i in range(30):
        await world.subscribe(f"fan{i}@example.com", "popular")
    await make_worker().run_once()
    alone, popular = await world.player("alone"), await world.player("popular")
    assert popular.poll_rate > alone.poll_rate
    assert popular.next_poll_at - popular.last_polled_at < alone.next_poll_at - alone.last_polled_at


# ------------------------------------------------------------------ the shared budget


async def test_the_budget_spaces_requests_of_many_takers(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    rate = 40.0
    budgets = [RequestBudget(session_factory, rate) for _ in range(3)]  # three "workers"
    sent: list[float] = []

    async def taker(budget: RequestBudget, n: int) -> None:
        for _ in range(n):
            await budget.acquire()
            sent.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(taker(budgets[i % 3], 20) for i in range(6)))
    sent.sort()
    spacing = slot_spacing(rate)
    assert len(sent) == 120
    assert sent[-1] - start >= 118 * spacing  # no slot was handed out twice
    # A taker wakes at most JITTER / 2 late (later slots are given up), so one second
    # of wake-ups holds only slots from 1 + JITTER / 2 seconds.
    for i, t in enumerate(sent):
        in_window = sum(1 for u in sent[i:] if u < t + 1.0)
        assert in_window <= math.ceil((1.0 + JITTER / 2) / spacing) + 1


async def test_a_429_holds_every_worker_back(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    first, second = RequestBudget(session_factory, 100), RequestBudget(session_factory, 100)
    await first.acquire()
    await first.rate_limited(retry_after=1.0)
    start = time.monotonic()
    await second.acquire()
    assert time.monotonic() - start >= 0.9
    async with session_factory() as s:
        assert await s.scalar(text("SELECT factor FROM chesscom_request_budget")) == 0.5


async def test_the_budget_row_comes_back_if_deleted(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    budget = RequestBudget(session_factory, 100)
    await budget.acquire()
    async with session_factory() as s, s.begin():
        await s.execute(text("DELETE FROM chesscom_request_budget"))
    await budget.acquire()
    async with session_factory() as s:
        assert await s.scalar(text("SELECT count(*) FROM chesscom_request_budget")) == 1
