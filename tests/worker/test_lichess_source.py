"""Lichess game starts and streams (SPEC §10, issue 19 items 3, 5, 7), end to end:
the Lichess simulator → the Lichess source → events and outbox rows → email."""

from __future__ import annotations

import asyncio
import email.message
import time
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.lichess.gate import LichessGate
from app.models import EmailSubscription, Event, NotificationLog, Player
from app.players.platforms import LichessProfiles
from tests.conftest import make_settings
from tests.fakes.lichess import LichessSimulator
from tests.fakes.smtp import SMTPServerFake
from tests.worker.conftest import WorkerFactory, World
from worker.runner import Worker
from worker.sources.lichess import LichessSource


@pytest.fixture
def worker_settings(clean_db: str, tmp_path: Any, smtp_server: SMTPServerFake) -> Settings:
    return make_settings(
        clean_db,
        tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        delivery_retry_base_seconds=0.05,
        chesscom_requests_per_second=1000,
        lichess_requests_per_second=100,
        lichess_sweep_seconds=1,
    )


async def track(factory: async_sessionmaker[AsyncSession], sim: LichessSimulator, name: str) -> int:
    sim.add_user(name)
    async with factory() as s, s.begin():
        pid = await s.scalar(
            text(
                "INSERT INTO players (player_id, platform, username, next_poll_at) "
                "VALUES (nextval('players_lichess_id_seq'), 'lichess', :name, 'infinity') "
                "RETURNING player_id"
            ),
            {"name": name.lower()},
        )
        assert pid is not None and pid < 0
        return int(pid)


async def subscribe(factory: async_sessionmaker[AsyncSession], email_: str, player_id: int) -> None:
    async with factory() as s, s.begin():
        s.add(
            EmailSubscription(
                email=email_,
                player_id=player_id,
                confirmed_at=text("now()"),  # type: ignore[arg-type]
            )
        )


def lichess_of(worker: Worker) -> LichessSource:
    source = next(s for s in worker.sources if isinstance(s, LichessSource))
    return source


async def sweep(worker: Worker) -> None:
    """One full sweep now (a new sweep starts at once)."""
    await lichess_of(worker).run_once()


async def rows(factory: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, dict[str, Any]]]:
    async with factory() as s:
        result = await s.execute(
            select(NotificationLog.notification_type, Event.key, Event.payload)
            .join(Event, Event.id == NotificationLog.event_id)
            .order_by(NotificationLog.id)
        )
        return [(t, k, p) for t, k, p in result.all()]


def body(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_blitz_game_alerts_once_with_its_watch_link(
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
    smtp_server: SMTPServerFake,
) -> None:
    pid = await track(session_factory, lichess, "DrNykterstein")
    await subscribe(session_factory, "fan@example.com", pid)
    worker = make_worker()
    await sweep(worker)  # the baseline
    game = lichess.start_game("DrNykterstein", "3+2")
    await sweep(worker)
    await sweep(worker)  # seen again: nothing new
    queued = await rows(session_factory)
    assert [(t, k) for t, k, _ in queued] == [("live_match", game)]
    payload = queued[0][2]
    assert payload["platform"] == "lichess"
    assert payload["games"][0]["url"] == f"https://lichess.org/{game}"
    assert payload["games"][0]["time_class"] == "blitz"
    async with session_factory() as s:
        player = await s.get(Player, pid)
        assert player is not None
        assert player.is_playing and player.current_game_url == f"https://lichess.org/{game}"

    await worker.drain_outbox()
    [sent] = smtp_server.messages
    assert sent.subject == "drnykterstein started playing live chess on Lichess"
    assert f"https://lichess.org/{game}" in body(sent.message)

    # A second game in the same session and a correspondence game stay silent.
    lichess.end_game("DrNykterstein")
    await sweep(worker)
    lichess.start_game("DrNykterstein", "5+0")
    await sweep(worker)
    other = await track(session_factory, lichess, "PenPal")
    await subscribe(session_factory, "fan@example.com", other)
    await sweep(worker)
    lichess.start_game("PenPal", None)  # correspondence: no clock
    await sweep(worker)
    assert len(await rows(session_factory)) == 1


async def test_a_classical_game_alerts_only_those_who_chose_classical(
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
    smtp_server: SMTPServerFake,
) -> None:
    """SPEC §10: `classical` is a time class of its own for filters; SPEC §4's default
    (bullet, blitz, rapid) leaves it out."""
    pid = await track(session_factory, lichess, "Slowpoke")
    await subscribe(session_factory, "default@example.com", pid)
    async with session_factory() as s, s.begin():
        s.add(
            EmailSubscription(
                email="classical@example.com",
                player_id=pid,
                time_classes=["classical"],
                confirmed_at=text("now()"),  # type: ignore[arg-type]
            )
        )
    worker = make_worker()
    await sweep(worker)  # the baseline
    game = lichess.start_game("Slowpoke", "30+0")
    await sweep(worker)
    queued = await rows(session_factory)
    assert [(t, k) for t, k, _ in queued] == [("live_match", game)]
    assert queued[0][2]["games"][0]["time_class"] == "classical"

    await worker.drain_outbox()
    [sent] = smtp_server.messages
    assert sent.rcpt_tos == ("classical@example.com",)
    assert f"https://lichess.org/{game}" in body(sent.message)


async def test_a_game_running_when_first_seen_never_alerts(
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
) -> None:
    pid = await track(session_factory, lichess, "Already_Playing")
    await subscribe(session_factory, "fan@example.com", pid)
    lichess.start_game("Already_Playing", "1+0")
    worker = make_worker()
    await sweep(worker)
    await sweep(worker)
    assert await rows(session_factory) == []


async def test_a_lichess_stream_alerts_with_the_streamer_page(
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
    smtp_server: SMTPServerFake,
) -> None:
    pid = await track(session_factory, lichess, "Streamer_X")
    await subscribe(session_factory, "fan@example.com", pid)
    worker = make_worker()
    await sweep(worker)
    lichess.start_stream("Streamer_X")
    await sweep(worker)
    await sweep(worker)
    [(kind, key, payload)] = await rows(session_factory)
    assert kind == "stream_started" and key.startswith("stream:lichess:streamer_x:")
    assert payload["stream"] == {
        "type": "lichess",
        "url": "https://lichess.org/streamer/streamer_x",
    }
    await worker.drain_outbox()
    [sent] = smtp_server.messages
    assert sent.subject == "streamer_x is live on Lichess"
    assert "https://lichess.org/streamer/streamer_x" in body(sent.message)


async def test_lichess_failing_retries_the_same_batch_with_backoff(
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
) -> None:
    pid = await track(session_factory, lichess, "Flaky")
    await subscribe(session_factory, "fan@example.com", pid)
    worker = make_worker()
    source = lichess_of(worker)
    await sweep(worker)
    game = lichess.start_game("Flaky", "3+0")
    async with session_factory() as s, s.begin():  # the sweep's time is up: a new one
        await s.execute(
            text("UPDATE lichess_request_budget SET sweep_started_at = now() - interval '1 minute'")
        )
    lichess.fail(502)
    first = await source.step()
    lichess.garbage()
    second = await source.step()
    assert 0 < first < second  # backing off
    assert await rows(session_factory) == []
    assert await source.step() == 0  # the same batch, read again: the game is found
    await source.settle()
    assert [k for _, k, _ in await rows(session_factory)] == [game]


async def test_a_429_pauses_every_lichess_request_for_a_minute(
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
) -> None:
    await track(session_factory, lichess, "Popular")
    worker = make_worker()
    source = lichess_of(worker)
    await sweep(worker)
    lichess.fail(429)
    async with session_factory() as s, s.begin():
        await s.execute(text("UPDATE lichess_request_budget SET sweep_cursor = NULL"))
    assert await source.step() == 60.0
    sent = len(lichess.requests)
    # Another worker (or the API) asking now is held back without a request.
    assert 55 < await lichess_of(make_worker()).step() <= 60
    assert len(lichess.requests) == sent and lichess.penalised == 0


async def test_two_workers_never_have_two_requests_in_flight_nor_more_than_100_ids(
    worker_settings: Settings,
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
) -> None:
    lichess.latency_seconds = 0.01
    async with session_factory() as s, s.begin():
        await s.execute(
            text(
                "INSERT INTO players (player_id, platform, username, next_poll_at) "
                "SELECT nextval('players_lichess_id_seq'), 'lichess', 'p' || i, 'infinity' "
                "FROM generate_series(1, 250) AS i"
            )
        )
    for i in range(1, 251):
        lichess.add_user(f"p{i}")
    workers = [make_worker(), make_worker()]
    # The API's profile reads go through the same gate, from an engine of their own.
    api = LichessProfiles(
        workers[0].lichess, LichessGate(session_factory, 100, max_wait_seconds=10)
    )

    deadline = time.monotonic() + 30

    async def run(source: LichessSource) -> None:
        while len(lichess.status_requests()) < 9 and time.monotonic() < deadline:
            wait = await source.step()
            await asyncio.sleep(min(wait, 0.1))

    async def read_profiles() -> int:
        reads = 0
        while len(lichess.status_requests()) < 9 and time.monotonic() < deadline:
            await api.fetch(f"p{reads % 250 + 1}")
            reads += 1
        return reads

    *_, profile_reads = await asyncio.gather(
        *(run(lichess_of(w)) for w in workers), read_profiles()
    )
    statuses = lichess.status_requests()
    assert len(statuses) >= 9 and profile_reads >= 1
    assert lichess.peak_in_flight == 1 and lichess.overlaps == 0 and lichess.penalised == 0
    assert max(r.ids for r in statuses) <= 100
    # A sweep is three requests (100, 100, 50): every player was looked at.
    assert sorted(r.ids for r in statuses[:3]) == [50, 100, 100]


async def test_lichess_down_holds_up_neither_chesscom_polling_nor_delivery(
    world: World,
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    lichess: LichessSimulator,
    smtp_server: SMTPServerFake,
) -> None:
    pid = await track(session_factory, lichess, "Unlucky")
    await subscribe(session_factory, "fan@example.com", pid)
    lichess.fail(503, times=10_000)  # Lichess is down for the whole test
    await world.followed("hikaru", "fan@example.com")  # the Chess.com baseline
    world.sim.add_game("hikaru", end_time=int(time.time()) - 60)
    await world.make_due()
    worker = make_worker()
    running = asyncio.create_task(worker.run_forever())
    try:
        for _ in range(300):
            if smtp_server.messages:
                break
            await asyncio.sleep(0.1)
    finally:
        worker.stop.set()
        await asyncio.wait_for(running, 30)
    assert [m.subject for m in smtp_server.messages] == [
        "hikaru started playing live chess on Chess.com"
    ]
    assert {r.status for r in lichess.requests} == {503}
    assert lichess_of(worker).failing.failures >= 1  # backing off, not spinning
