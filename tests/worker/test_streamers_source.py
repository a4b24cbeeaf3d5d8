"""Chess.com streams (SPEC §10, issue 19 items 2, 5, 7), end to end: the simulator's
/pub/streamers → the streamer-list source → events and outbox rows → email."""

from __future__ import annotations

import email.message
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, Event, NotificationLog, Player
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.smtp import SMTPServerFake
from tests.worker.conftest import WorkerFactory, World
from worker.runner import Worker
from worker.sources.chesscom_streamers import StreamersSource


def streamers_of(worker: Worker) -> StreamersSource:
    return next(s for s in worker.sources if isinstance(s, StreamersSource))


async def read_now(factory: async_sessionmaker[AsyncSession], worker: Worker) -> float:
    """The period's read, now (the lease made due)."""
    async with factory() as s, s.begin():
        await s.execute(text("UPDATE source_leases SET next_run_at = now()"))
    return await streamers_of(worker).step()


async def stream_rows(
    factory: async_sessionmaker[AsyncSession],
) -> list[tuple[str, dict[str, Any]]]:
    async with factory() as s:
        result = await s.execute(
            select(Event.key, Event.payload)
            .join(NotificationLog, NotificationLog.event_id == Event.id)
            .where(Event.kind == "stream_started")
            .order_by(NotificationLog.id)
        )
        return [(k, p) for k, p in result.all()]


def body(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_stream_live_when_tracked_stays_silent_and_a_new_one_alerts_once(
    world: World,
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
    smtp_server: SMTPServerFake,
) -> None:
    await world.track("Hikaru")
    await world.track("GothamChess")
    await world.subscribe("fan@example.com", "hikaru")
    await world.subscribe("fan@example.com", "gothamchess")
    simulator.set_streamer("Hikaru", live=True, twitch_url="https://twitch.tv/gmhikaru")
    simulator.set_streamer("GothamChess", platforms=[])
    worker = make_worker()
    await read_now(session_factory, worker)  # the baseline: hikaru is already live
    assert await stream_rows(session_factory) == []

    simulator.start_stream("GothamChess", "youtube")
    await read_now(session_factory, worker)
    await read_now(session_factory, worker)  # 304: nothing new
    [(key, payload)] = await stream_rows(session_factory)
    assert key.startswith("stream:chesscom:gothamchess:")
    assert payload["stream"] == {"type": "youtube", "url": "https://youtube.example/gothamchess"}
    async with session_factory() as s:
        gotham = await s.scalar(select(Player).where(Player.key == "gothamchess"))
        assert gotham is not None and gotham.is_streaming
        assert gotham.stream_url == "https://youtube.example/gothamchess"

    await worker.drain_outbox()
    [sent] = smtp_server.messages
    assert sent.subject == "gothamchess is live on YouTube"
    assert "https://youtube.example/gothamchess" in body(sent.message)
    assert [r.status for r in simulator.requests if r.path == "/pub/streamers"] == [200, 200, 304]


async def test_a_stream_resumed_within_ten_minutes_is_the_same_stream(
    world: World,
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
) -> None:
    await world.track("Hikaru")
    await world.subscribe("fan@example.com", "hikaru")
    simulator.set_streamer("Hikaru")
    worker = make_worker()
    await read_now(session_factory, worker)
    simulator.start_stream("Hikaru")
    await read_now(session_factory, worker)
    simulator.end_stream("Hikaru")
    await read_now(session_factory, worker)
    simulator.start_stream("Hikaru")  # back after a dropped connection
    await read_now(session_factory, worker)
    assert len(await stream_rows(session_factory)) == 1
    # Off for longer than the grace: a new stream.
    simulator.end_stream("Hikaru")
    await read_now(session_factory, worker)
    async with session_factory() as s, s.begin():  # as if all that was 11 minutes ago
        await s.execute(text("UPDATE players SET stream_seen_at = now() - interval '11 minutes'"))
        await s.execute(text("UPDATE events SET key = key || '-earlier'"))
    simulator.start_stream("Hikaru")
    await read_now(session_factory, worker)
    assert len(await stream_rows(session_factory)) == 2


async def test_one_read_per_period_whichever_workers_run(
    world: World,
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
) -> None:
    await world.track("Hikaru")
    simulator.set_streamer("Hikaru")
    waits = [await streamers_of(make_worker()).step() for _ in range(3)]
    assert len([r for r in simulator.requests if r.path == "/pub/streamers"]) == 1
    assert waits[0] == 60 and all(0 < w <= 60 for w in waits[1:])


async def test_a_player_tracked_after_the_last_change_gets_its_baseline_from_a_304(
    world: World,
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
) -> None:
    simulator.set_streamer("Hikaru", live=True)
    worker = make_worker()
    await read_now(session_factory, worker)
    await world.track("Hikaru")  # tracked while live
    await world.subscribe("fan@example.com", "hikaru")
    await read_now(session_factory, worker)  # 304, the stored list says live: baseline
    await read_now(session_factory, worker)
    assert await stream_rows(session_factory) == []
    assert [r.status for r in simulator.requests if r.path == "/pub/streamers"] == [200, 304, 304]
    async with session_factory() as s:
        hikaru = await s.scalar(select(Player).where(Player.key == "hikaru"))
        assert hikaru is not None and hikaru.is_streaming


async def test_a_list_that_fails_to_parse_changes_nothing(
    world: World,
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
) -> None:
    await world.track("Hikaru")
    await world.subscribe("fan@example.com", "hikaru")
    simulator.set_streamer("Hikaru")
    worker = make_worker()
    await read_now(session_factory, worker)
    simulator.start_stream("Hikaru")
    simulator.malformed(None, endpoint="streamers")
    await read_now(session_factory, worker)
    assert await stream_rows(session_factory) == []
    async with session_factory() as s:
        hikaru = await s.scalar(select(Player).where(Player.key == "hikaru"))
        assert hikaru is not None and not hikaru.is_streaming
    await read_now(session_factory, worker)  # the next period reads it right
    assert len(await stream_rows(session_factory)) == 1


async def test_subscribers_who_chose_only_sessions_get_no_stream_alert(
    world: World,
    make_worker: WorkerFactory,
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
    smtp_server: SMTPServerFake,
) -> None:
    await world.track("Hikaru")
    sessions_only = await world.subscribe("sessions@example.com", "hikaru")
    await world.subscribe("everything@example.com", "hikaru")
    async with session_factory() as s, s.begin():
        await s.execute(
            update(EmailSubscription)
            .where(EmailSubscription.id == sessions_only)
            .values(events=["session"])
        )
    simulator.set_streamer("Hikaru")
    worker = make_worker()
    await read_now(session_factory, worker)
    simulator.start_stream("Hikaru")
    await read_now(session_factory, worker)
    await worker.drain_outbox()
    [sent] = smtp_server.messages
    assert sent.rcpt_tos == ("everything@example.com",)
    assert sent.subject == "hikaru is live on Twitch"
    async with session_factory() as s:
        logged = await s.scalars(
            select(NotificationLog.subscription_id).where(
                NotificationLog.notification_type == "stream_started"
            )
        )
        assert sessions_only not in set(logged)
