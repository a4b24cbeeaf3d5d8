"""Telegram on the pages (SPEC §11, §12; issue 20 item 2): the home page and a player's
page offer "Follow in Telegram" only when the site runs a bot (TELEGRAM_BOT_TOKEN set),
and the form answers the bot's deep link to a pending subscription."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import EmailSubscription
from app.telegram import start_token
from tests.conftest import ADMIN_TOKEN
from tests.fakes.telegram import TOKEN, TelegramSimulator, serve_telegram
from tests.subscribers.test_pages import csrf_of

SECRET = "test-secret-key-" + "x" * 32


@pytest.fixture
def bot() -> Iterator[TelegramSimulator]:
    with serve_telegram() as sim:
        yield sim


@pytest.fixture(params=[True, False], ids=["with-bot", "without-bot"])
def with_bot(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def settings_overrides(with_bot: bool, bot: TelegramSimulator) -> dict[str, object]:
    if not with_bot:
        return {}
    return {"telegram_bot_token": TOKEN, "telegram_api_base": bot.base_url}


async def rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(EmailSubscription)) or 0)


async def test_follow_in_telegram_is_offered_only_with_a_bot(
    client: httpx.AsyncClient,
    hikaru: object,
    with_bot: bool,
    bot: TelegramSimulator,
    engine: AsyncEngine,
) -> None:
    tracked = await client.post(
        "/api/v1/players",
        json={"username": "hikaru"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert tracked.status_code in (200, 201), tracked.text
    home, player = await client.get("/"), await client.get("/p/hikaru")
    for page in (home, player):
        assert page.status_code == 200
        offered = 'action="/subscribe-telegram"' in page.text
        assert offered is with_bot, page.url
        assert ('id="subscribe_telegram"' in page.text) is with_bot

    answer = await client.post(
        "/subscribe-telegram", data={"csrf_token": csrf_of(home.text), "username": "hikaru"}
    )
    if not with_bot:
        assert answer.status_code == 404 and "no Telegram bot" in answer.text
        assert await rows(engine) == 0
        return
    assert answer.status_code == 200, answer.text
    found = re.search(r'<a href="([^"]+)" id="telegram_link"', answer.text)
    assert found, answer.text
    link = html.unescape(found.group(1))
    assert link.startswith(f"https://t.me/{bot.username}?start=")
    async with engine.connect() as conn:
        row = (await conn.execute(select(EmailSubscription))).one()
    assert row.channel == "telegram" and row.telegram_chat_id is None and row.confirmed_at is None
    assert start_token.verify(SECRET, link.rsplit("=", 1)[1]).subscription_id == row.id


async def test_the_telegram_form_refuses_a_bad_username_and_stores_nothing(
    client: httpx.AsyncClient, with_bot: bool, engine: AsyncEngine
) -> None:
    csrf = csrf_of((await client.get("/")).text)
    bad = await client.post("/subscribe-telegram", data={"csrf_token": csrf, "username": "a b"})
    if with_bot:
        assert bad.status_code == 422 and 'id="telegram_username_error"' in bad.text
    else:
        assert bad.status_code == 404  # no bot: nothing to subscribe to at all
    no_csrf = await client.post("/subscribe-telegram", data={"username": "hikaru"})
    assert no_csrf.status_code == 403
    assert await rows(engine) == 0
