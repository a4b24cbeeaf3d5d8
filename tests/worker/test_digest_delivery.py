"""A digest subscriber gets one digest email and no per-session email (issue 12), over
real SMTP (aiosmtpd) from the real worker."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.notifications.outbox import fan_out
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
