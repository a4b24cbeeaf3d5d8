"""A digest subscriber gets one digest email and no per-session or per-stream email
(issue 12, SPEC §10), over real SMTP (aiosmtpd) from the real worker."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, NotificationType, Player
from app.notifications.outbox import fan_out, record_event
from app.notifications.payloads import GameRecord, LiveStream, StreamStarted, live_session
from app.subscriptions.digest import run_due_digests
from tests.fakes.smtp import SMTPServerFake
from tests.subscribers.test_digest import digest_address
from tests.subscribers.test_fanout import add_sub, game, seed_player, session_event
from tests.worker.conftest import WorkerFactory


async def test_digest_email_lists_the_sessions_and_replaces_alerts(
    session_factory: async_sessionmaker[AsyncSession],
    make_worker: WorkerFactory,
    smtp_server: SMTPServerFake,
) -> None:
    evening = datetime(2026, 10, 24, 18, 0, tzinfo=UTC)  # eve of Berlin's autumn change
    async with session_factory() as s, s.begin():
        await seed_player(s)
        await add_sub(s, "now@example.com")
        await digest_address(s, "daily@example.com", "Europe/Berlin", 7, evening)
        blitz = game("blitz", True)
        await fan_out(s, await session_event(s, [blitz]), now=evening)
        await fan_out(s, await session_event(s, [game("rapid", False)]), now=evening)
    worker = make_worker()
    await worker.drain_outbox()
    messages = await smtp_server.wait_for(2)
    assert sorted(m.rcpt_tos for m in messages) == [("now@example.com",)] * 2
    # 07:00 CET on 2026-10-25 (clocks went back at 03:00) is 06:00 UTC.
    run = await run_due_digests(session_factory, now=datetime(2026, 10, 25, 6, 0, tzinfo=UTC))
    assert run.queued == 1
    await worker.drain_outbox()
    messages = await smtp_server.wait_for(3)
    digests = [m for m in messages if m.rcpt_tos == ("daily@example.com",)]
    assert len(digests) == 1 and len(messages) == 3
    digest = digests[0]
    assert "digest for 2026-10-25: 2 sessions" in digest.subject
    body = digest.message.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    assert "hikaru" in text and blitz.url in text and "/manage?token=" in text
    unsubscribe = str(digest.message["List-Unsubscribe"])
    assert "/manage/unsubscribe-all?token=" in unsubscribe
    assert digest.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html_part = digest.message.get_body(("html",))
    assert html_part is not None and "/manage?token=" in str(html_part.get_content())


async def test_a_digest_lists_streams_and_lichess_games_as_well_as_sessions(
    session_factory: async_sessionmaker[AsyncSession],
    make_worker: WorkerFactory,
    smtp_server: SMTPServerFake,
) -> None:
    """Streams are events of their own (SPEC §10): a digest address hears of them in its
    digest, with the link to watch, instead of losing them; a Lichess game seen starting
    is listed with its watch link and no invented opponent."""
    evening = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    started = int(evening.timestamp())
    async with session_factory() as s, s.begin():
        await seed_player(s)
        s.add(Player(player_id=-1, platform="lichess", username="drnykterstein"))
        await s.flush()
        await digest_address(s, "daily@example.com", "Europe/Berlin", 7, evening)
        s.add(
            EmailSubscription(
                email="daily@example.com", player_id=-1, confirmed_at=datetime.now(UTC)
            )
        )
        streams_only = await add_sub(s, "streams@example.com")
        await s.execute(
            update(EmailSubscription)
            .where(EmailSubscription.id == streams_only)
            .values(events=["stream"])
        )
        live = StreamStarted(
            username="hikaru",
            name="Hikaru Nakamura",
            platform="chesscom",
            key="hikaru",
            started_at=started,
            stream=LiveStream("twitch", "https://twitch.tv/gmhikaru"),
        )
        stream_event = await record_event(
            s, NotificationType.stream_started, f"stream:chesscom:hikaru:{started}", live,
            player_id=1, occurred_at=evening,
        )  # fmt: skip
        await fan_out(s, stream_event, now=evening)
        watching = GameRecord(
            event_id="q7ZvsdUF", url="https://lichess.org/q7ZvsdUF", end_time=started + 60,
            start_time=started + 60, time_class="blitz", time_control="3+2", in_progress=True,
        )  # fmt: skip
        payload = live_session("drnykterstein", None, started + 60, [watching], platform="lichess")
        lichess_event = await record_event(
            s, NotificationType.live_match, "q7ZvsdUF", payload, player_id=-1
        )
        await fan_out(s, lichess_event, now=evening)
    worker = make_worker()
    await worker.drain_outbox()
    (alert,) = await smtp_server.wait_for(1)  # streams@ chose streams: its alert is now
    assert alert.rcpt_tos == ("streams@example.com",)
    assert alert.subject == "hikaru is live on Twitch"

    run = await run_due_digests(session_factory, now=datetime(2026, 11, 21, 6, 0, tzinfo=UTC))
    assert run.queued == 1
    await worker.drain_outbox()
    messages = await smtp_server.wait_for(2)
    (digest,) = [m for m in messages if m.rcpt_tos == ("daily@example.com",)]
    assert digest.subject == "Your Chess.com Helper digest for 2026-11-21: 1 session, 1 stream"
    body = digest.message.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    assert "hikaru (Hikaru Nakamura) went live on Twitch at 19:00 CET" in text
    assert "https://twitch.tv/gmhikaru" in text
    assert "drnykterstein on Lichess" in text and "https://lichess.org/q7ZvsdUF" in text
    assert "unknown opponent" not in text
    html_part = digest.message.get_body(("html",))
    assert html_part is not None
    assert 'href="https://twitch.tv/gmhikaru"' in str(html_part.get_content())
