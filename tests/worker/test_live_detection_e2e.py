"""The worker end to end (SPEC §6-§7): Chess.com simulator → detection → outbox → SMTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.config import Settings
from tests.fakes.chesscom import ChessComSimulator
from tests.worker.conftest import DAY, HOUR, NOW, WorkerFactory, World

pytestmark = pytest.mark.usefixtures("clean_db")

GAP = 1800


async def test_baseline_games_never_notify(world: World, make_worker: WorkerFactory) -> None:
    await world.track("hikaru")
    world.sim.add_game("hikaru", end_time=NOW - 2 * HOUR)
    world.sim.add_game("hikaru", end_time=NOW - 60)  # even a very recent one
    await world.subscribe("fan@example.com", "hikaru")
    await make_worker().run_once()
    assert world.smtp.messages == []
    assert await world.logs() == []
    player = await world.player("hikaru")
    assert player.detection_state["baseline_done"] is True
    assert player.last_checked_at is not None


async def test_a_new_live_session_sends_one_email_per_subscriber(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.track("hikaru", name="Hikaru Nakamura")
    world.sim.add_game("hikaru", end_time=NOW - 5 * HOUR)
    for email in ("a@example.com", "b@example.com"):
        await world.subscribe(email, "hikaru")
    await make_worker().run_once()  # baseline

    world.sim.add_game("hikaru", end_time=NOW - 600, time_control="180+2", opponent="magnus")
    world.sim.add_game("hikaru", end_time=NOW - 120, time_control="180+2", opponent="fabiano")
    await make_worker().run_once()

    for email in ("a@example.com", "b@example.com"):
        assert world.sent_to(email) == ["hikaru started playing live chess on Chess.com"]
    msg = world.smtp.messages[0].message
    body = msg.get_body(("plain",))
    assert body is not None
    text_body = body.get_content()
    assert "magnus" in text_body and "fabiano" in text_body and "3+2" in text_body
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/api/v1/unsubscribe?token=" in msg["List-Unsubscribe"]
    raw_headers = world.smtp.messages[0].raw.split(b"\r\n\r\n", 1)[0].splitlines()
    (line,) = [h for h in raw_headers if h.startswith(b"List-Unsubscribe:")]
    assert line == f"List-Unsubscribe: {msg['List-Unsubscribe']}".encode(), "a plain <URL>"
    logs = await world.logs()
    assert {(log.status, log.success, log.attempts) for log in logs} == {("sent", True, 1)}
    assert all(log.sent_at is not None for log in logs)
    player = await world.player("hikaru")
    assert player.is_playing is True

    # The same games seen again send nothing more.
    await world.make_due()
    await make_worker().run_once()
    assert len(world.smtp.messages) == 2


async def test_games_after_the_gap_open_a_second_session(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.followed("hikaru", "fan@example.com")  # baseline: no games at all
    world.sim.add_game("hikaru", end_time=NOW - 3 * HOUR)
    world.sim.add_game("hikaru", end_time=NOW - 3 * HOUR + 400)  # same session
    world.sim.add_game("hikaru", end_time=NOW - 300)  # after a gap: a new session
    await make_worker().run_once()
    assert len(world.sent_to("fan@example.com")) == 2
    assert len({log.event_id for log in await world.logs()}) == 2


async def test_sessions_split_even_when_every_pgn_carries_the_same_stale_clock(
    world: World, make_worker: WorkerFactory
) -> None:
    # A feed whose PGNs all say the game started on one old day: the clocks cannot be
    # these games' (a 3+2 game does not last days), so the end times decide.
    template = '[Event "Live Chess"]\n[UTCDate "2024.01.02"]\n[UTCTime "10:00:00"]\n\n1. e4 1-0\n'
    await world.followed("hikaru", "fan@example.com")
    world.sim.add_game("hikaru", end_time=NOW - 3 * HOUR, pgn=template)
    world.sim.add_game("hikaru", end_time=NOW - 3 * HOUR + 400, pgn=template)  # same session
    await world.make_due()
    await make_worker().run_once()
    world.sim.add_game("hikaru", end_time=NOW - 300, pgn=template)  # after the gap
    await world.make_due()
    await make_worker().run_once()
    assert len(world.sent_to("fan@example.com")) == 2


async def test_continuing_session_sends_nothing_more(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.followed("hikaru", "fan@example.com")
    world.sim.add_game("hikaru", end_time=NOW - 900)
    await make_worker().run_once()
    assert len(world.sent_to("fan@example.com")) == 1
    world.sim.add_game("hikaru", end_time=NOW - 300)  # within the gap of the last game
    await world.make_due()
    await make_worker().run_once()
    assert len(world.sent_to("fan@example.com")) == 1


async def test_daily_games_never_notify(world: World, make_worker: WorkerFactory) -> None:
    await world.followed("hikaru", "fan@example.com")
    world.sim.add_game("hikaru", end_time=NOW - 100, time_class="daily", time_control="1/86400")
    await make_worker().run_once()
    assert world.smtp.messages == []
    assert (await world.player("hikaru")).is_playing is False


async def test_pending_and_unsubscribed_subscribers_get_nothing(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.track("hikaru")
    await world.subscribe("active@example.com", "hikaru")
    await world.subscribe("pending@example.com", "hikaru", confirmed=False)
    await world.subscribe("gone@example.com", "hikaru", active=False)
    await make_worker().run_once()
    world.sim.add_game("hikaru", end_time=NOW - 100)
    await make_worker().run_once()
    assert [list(m.rcpt_tos) for m in world.smtp.messages] == [["active@example.com"]]


async def test_smtp_4xx_then_success_is_delivered_once(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.followed("hikaru", "fan@example.com")
    world.sim.add_game("hikaru", end_time=NOW - 100)
    world.smtp.fail_next(1, code=451)
    await make_worker().run_once()
    assert len(world.sent_to("fan@example.com")) == 1
    [log] = await world.logs()
    assert log.status == "sent" and log.attempts == 2


async def test_five_failures_mark_the_row_failed_with_the_error(
    world: World, make_worker: WorkerFactory, worker_settings: Settings
) -> None:
    # The schedule of SPEC §7 (5 s, 2 min, 10 min, 30 min) scaled down 1,000 times: the
    # four waits take 2.5 s in all.
    settings = worker_settings.model_copy(update={"delivery_retry_base_seconds": 0.005})
    await world.followed("hikaru", "fan@example.com")
    world.sim.add_game("hikaru", end_time=NOW - 100)
    world.smtp.fail_next(10, code=452, message="mailbox full, try later")
    await make_worker(settings).run_once()
    [log] = await world.logs()
    assert log.status == "failed" and log.success is False
    assert log.attempts == 5
    assert (log.error_message and "452" in log.error_message) or "mailbox" in (
        log.error_message or ""
    )
    assert world.smtp.messages == []


async def test_permanent_smtp_rejection_fails_at_once(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.followed("hikaru", "nobody@example.com")
    world.sim.add_game("hikaru", end_time=NOW - 100)
    world.smtp.reject_recipient("nobody@example.com", code=550)
    await make_worker().run_once()
    [log] = await world.logs()
    assert log.status == "failed" and log.attempts == 1


async def test_unchanged_archive_is_a_conditional_request_and_no_write(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.track("hikaru")
    world.sim.add_game("hikaru", end_time=NOW - DAY)
    await make_worker().run_once()
    before = await world.player("hikaru")
    world.sim.reset_requests()
    await world.make_due()
    await make_worker().run_once()
    archive_requests = [r for r in world.sim.requests if "/games/" in r.path]
    assert archive_requests, "the archive was polled"
    assert all(r.if_none_match for r in archive_requests)
    assert {r.status for r in archive_requests} == {304}
    assert all("contact" in (r.user_agent or "") for r in world.sim.requests)
    after = await world.player("hikaru")
    assert after.detection_state == before.detection_state
    assert after.updated_at == before.updated_at  # the 304 poll wrote no state


async def test_unknown_player_is_marked_closed_and_polled_rarely(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.track("hikaru")
    world.sim.remove_player("hikaru")
    await make_worker().run_once()
    player = await world.player("hikaru")
    assert player.gone_at is not None
    assert player.next_poll_at > datetime.now(UTC) + timedelta(hours=12)


async def test_one_failing_player_does_not_stop_the_cycle(
    world: World, make_worker: WorkerFactory
) -> None:
    await world.track("broken")
    await world.followed("hikaru", "fan@example.com")
    world.sim.fail("broken", status=500, times=None)
    world.sim.add_game("hikaru", end_time=NOW - 100)
    await make_worker().run_once()
    assert len(world.sent_to("fan@example.com")) == 1
    broken = await world.player("broken")
    assert broken.failure_count == 1 and broken.last_error


async def test_game_in_last_months_archive_found_after_the_month_changed(
    world: World, make_worker: WorkerFactory, simulator: ChessComSimulator
) -> None:
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month_end = int(month_start.timestamp()) - 60  # 23:59 on the last day
    await world.track("hikaru")
    await world.subscribe("fan@example.com", "hikaru")
    world.sim.add_game("hikaru", end_time=last_month_end - 5 * DAY)
    await make_worker().run_once()  # baseline, as if made last month
    async with world.factory() as s, s.begin():
        await s.execute(
            text("UPDATE players SET last_polled_at = :t, next_poll_at = now()"),
            {"t": month_start - timedelta(minutes=5)},
        )
    # The game ended before midnight but shows up in the archive only now.
    world.sim.add_game("hikaru", end_time=last_month_end)
    world.sim.reset_requests()
    await make_worker().run_once()
    assert len(world.sent_to("fan@example.com")) == 1
    months = {r.path.rsplit("/games/", 1)[1] for r in world.sim.requests if "/games/" in r.path}
    assert len(months) == 2


async def test_parallel_polls_respect_a_429_cap(
    world: World, make_worker: WorkerFactory, simulator: ChessComSimulator
) -> None:
    simulator.max_concurrent = 2
    simulator.latency_seconds = 0.02
    simulator.retry_after_seconds = 0  # Retry-After: 0 keeps the test fast
    for i in range(24):
        await world.track(f"player{i:02d}")
    worker = make_worker()
    await worker.run_once()
    polled = await world.factory().__aenter__()
    try:
        rows = (
            await polled.execute(
                text("SELECT count(*) FROM players WHERE detection_state ? 'baseline_done'")
            )
        ).scalar()
    finally:
        await polled.close()
    assert rows == 24, "every player polled despite 429s"
    assert any(r.status == 429 for r in simulator.requests)
    assert worker.limiter.limit < worker.settings.poll_concurrency
