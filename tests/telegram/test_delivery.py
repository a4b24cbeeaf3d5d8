"""Telegram through the one outbox (SPEC §11, issue 20 items 2 and 4), against the
loopback Bot API: a chat that pressed Start gets exactly one alert per session, in
HTML Telegram accepts, and nothing after /stop; a 403 (the bot blocked) ends every
subscription of the chat."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from app.config import Settings
from app.models import EmailSubscription, NotificationLog, Player
from app.telegram import start_token, texts
from tests.fakes.telegram import TOKEN, TelegramSimulator, html_problem, serve_telegram
from tests.worker.conftest import HOUR, NOW, WorkerFactory, World

pytestmark = pytest.mark.usefixtures("clean_db")
CHAT = 777001


@pytest.fixture
def sim() -> Iterator[TelegramSimulator]:
    with serve_telegram() as s:
        yield s


@pytest.fixture
def tg_settings(worker_settings: Settings, sim: TelegramSimulator) -> Settings:
    return worker_settings.model_copy(
        update={"telegram_bot_token": TOKEN, "telegram_api_base": sim.base_url}
    )


async def pending(world: World, username: str) -> int:
    async with world.factory() as s, s.begin():
        pid = await s.scalar(select(Player.player_id).where(Player.username == username))
        row = EmailSubscription(channel="telegram", player_id=pid)
        s.add(row)
        await s.flush()
        return row.id


async def start(
    world: World, make_worker: WorkerFactory, settings: Settings, sim: TelegramSimulator,
    username: str, chat: int = CHAT,
) -> int:  # fmt: skip
    """The person opens the deep link and presses Start; the worker's pass binds it."""
    sub_id = await pending(world, username)
    sim.user_sends(chat, f"/start {start_token.sign(settings.resolved_secret_key(), sub_id)}")
    await make_worker(settings).run_once()
    return sub_id


async def session(
    world: World, make_worker: WorkerFactory, settings: Settings, username: str, end: int
) -> None:
    world.sim.add_game(username, end_time=end, time_control="180+2", opponent="magnus")
    await world.make_due()
    await make_worker(settings).run_once()


async def baseline(world: World, make_worker: WorkerFactory, settings: Settings) -> None:
    for name in ("hikaru", "firouzja2003"):
        await world.track(name)
        world.sim.add_game(name, end_time=NOW - 5 * HOUR)
    await make_worker(settings).run_once()


def alerts(sim: TelegramSimulator, chat: int = CHAT) -> list[str]:
    return [m.text for m in sim.to(chat) if "is playing" in m.text]


async def test_start_then_one_alert_per_session_and_nothing_after_stop(
    world: World, make_worker: WorkerFactory, tg_settings: Settings, sim: TelegramSimulator
) -> None:
    await baseline(world, make_worker, tg_settings)
    await start(world, make_worker, tg_settings, sim, "hikaru")
    (welcome,) = [m.text for m in sim.to(CHAT)]
    assert welcome.startswith(texts.started("hikaru")) and "/manage/telegram?token=" in welcome
    await session(world, make_worker, tg_settings, "hikaru", NOW - 300)
    await session(world, make_worker, tg_settings, "hikaru", NOW - 120)  # the same session
    (alert,) = alerts(sim)
    assert html_problem(alert) is None
    assert alert.startswith("<b>Hikaru Player is playing on Chess.com</b>")
    assert "vs magnus" in alert and "https://www.chess.com/game/live/" in alert
    assert "/api/v1/unsubscribe?token=" in alert and "/stop" in alert
    sim.user_sends(CHAT, "/stop")
    await make_worker(tg_settings).run_once()
    assert sim.to(CHAT)[-1].text == texts.stopped(1)
    await session(world, make_worker, tg_settings, "hikaru", NOW + 3 * HOUR)
    assert len(alerts(sim)) == 1


async def test_a_blocked_bot_ends_every_subscription_of_the_chat(
    world: World, make_worker: WorkerFactory, tg_settings: Settings, sim: TelegramSimulator
) -> None:
    await baseline(world, make_worker, tg_settings)
    hikaru = await start(world, make_worker, tg_settings, sim, "hikaru")
    firouzja = await start(world, make_worker, tg_settings, sim, "firouzja2003")
    sim.block(CHAT)
    await session(world, make_worker, tg_settings, "hikaru", NOW - 300)
    async with world.factory() as s:
        subs = (await s.scalars(select(EmailSubscription).where(
            EmailSubscription.id.in_([hikaru, firouzja])))).all()  # fmt: skip
        assert [sub.is_active for sub in subs] == [False, False]
        log = await s.scalar(
            select(NotificationLog).where(NotificationLog.subscription_id == hikaru)
        )
        assert log is not None and log.status == "failed" and "403" in (log.error_message or "")
    assert alerts(sim) == []


async def test_an_unbound_subscription_gets_nothing(
    world: World, make_worker: WorkerFactory, tg_settings: Settings, sim: TelegramSimulator
) -> None:
    await baseline(world, make_worker, tg_settings)
    await pending(world, "hikaru")  # the link was never opened
    await session(world, make_worker, tg_settings, "hikaru", NOW - 300)
    assert sim.sent == []
