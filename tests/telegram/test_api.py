"""Subscribing a Telegram chat through the API (SPEC §4, §11): a pending subscription
and a deep link to the bot, whose /start binds the chat."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import EmailSubscription
from app.telegram import start_token
from tests.fakes.telegram import TOKEN, TelegramSimulator, serve_telegram


@pytest.fixture
def bot() -> Iterator[TelegramSimulator]:
    with serve_telegram() as sim:
        yield sim


@pytest.fixture
def settings_overrides(bot: TelegramSimulator) -> dict[str, object]:
    return {"telegram_bot_token": TOKEN, "telegram_api_base": bot.base_url}


async def test_telegram_answers_a_deep_link_to_a_pending_subscription(
    client: httpx.AsyncClient, hikaru: object, bot: TelegramSimulator, engine: AsyncEngine
) -> None:
    answer = await client.post(
        "/api/v1/subscriptions", json={"username": "hikaru", "telegram": True}
    )
    assert answer.status_code == 202, answer.text
    link = answer.json()["link"]
    assert link.startswith(f"https://t.me/{bot.username}?start=")
    assert answer.json()["status"] == "pending_confirmation"
    async with engine.connect() as conn:
        row = (await conn.execute(select(EmailSubscription))).one()
    assert row.channel == "telegram" and row.telegram_chat_id is None and row.confirmed_at is None
    secret = "test-secret-key-" + "x" * 32
    assert start_token.verify(secret, link.rsplit("=", 1)[1]).subscription_id == row.id


async def test_telegram_unreachable_is_503(
    client: httpx.AsyncClient, hikaru: object, bot: TelegramSimulator
) -> None:
    bot.token = "1:another-bot-token-entirely-x"  # our token is now refused (401)
    answer = await client.post(
        "/api/v1/subscriptions", json={"username": "hikaru", "telegram": True}
    )
    assert answer.status_code == 503, answer.text
