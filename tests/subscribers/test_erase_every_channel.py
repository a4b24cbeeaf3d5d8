"""Erase by address covers every channel the person gave us (SPEC §4, issue 20 item 6).

A push subscription or a Telegram chat has no address of its own: it belongs to a person
when that person made it from their own manage page, i.e. with the address's manage
token as the bearer of `POST /me/subscriptions` (the row then records the address in
`owner_email`). Erasing the address (admin `DELETE /subscribers/{email}`, `DELETE /me`)
erases those too; push and Telegram subscriptions made anonymously stay (they are the
browser's or the chat's, erased from there). The admin route finds the address in any
stored spelling, answers 404 when nothing is stored, and refuses a malformed one (422).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import EmailSubscription
from app.push.vapid import b64url
from app.subscriptions.me import sign_manage_token
from app.tokens import TokenSigner
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.telegram import TOKEN, TelegramSimulator, serve_telegram

P256DH = "BJxLCLEHd7zFlcBQ2Y3urUMN-N5CxqtlzuKYlRV3N4-I0YGpYvoWhhYBYfJZs7nRk1cHlgeJ9MYqmNA26srQ4fs"
AUTH = b64url(b"0123456789abcdef")
MINE = "http://127.0.0.1:9/wpush/mine"  # loopback: allowed in this module only
ANONYMOUS = "http://127.0.0.1:9/wpush/someone-else"
FAN = "fan@example.com"


@pytest.fixture
def bot() -> Iterator[TelegramSimulator]:
    with serve_telegram() as sim:
        yield sim


@pytest.fixture
def settings_overrides(bot: TelegramSimulator) -> dict[str, object]:
    return {
        "webhook_allow_private": True,
        "require_email_confirmation": False,
        "telegram_bot_token": TOKEN,
        "telegram_api_base": bot.base_url,
    }


def push(endpoint: str) -> dict[str, object]:
    return {"endpoint": endpoint, "keys": {"p256dh": P256DH, "auth": AUTH}}


async def manage_token(engine: AsyncEngine, settings: object, email: str) -> str:
    async with engine.connect() as conn:
        sub_id = await conn.scalar(
            select(EmailSubscription.id).where(EmailSubscription.email == email).limit(1)
        )
    assert sub_id is not None
    signer = TokenSigner(settings.resolved_secret_key())  # type: ignore[attr-defined]
    return sign_manage_token(signer, sub_id, email)


async def rows(engine: AsyncEngine) -> list[tuple[str, str | None, str | None]]:
    """(channel, the address or endpoint, owner) of every subscription, in order."""
    async with engine.connect() as conn:
        found = await conn.execute(
            select(
                EmailSubscription.channel,
                EmailSubscription.email,
                EmailSubscription.push_endpoint,
                EmailSubscription.owner_email,
            ).order_by(EmailSubscription.id)
        )
        return [(r.channel, r.email or r.push_endpoint, r.owner_email) for r in found]


@pytest.fixture
async def a_person_with_every_channel(
    client: httpx.AsyncClient,
    simulator: ChessComSimulator,
    hikaru: object,
    engine: AsyncEngine,
    settings: object,
) -> str:
    """fan@example.com follows hikaru by email and, from the manage page, by push and in
    Telegram; someone else's browser follows hikaru anonymously. The manage token."""
    simulator.add_player("MagnusCarlsen", player_id=3889224)
    for body in (
        {"email": FAN, "username": "hikaru"},
        {"email": "stay@example.com", "username": "hikaru"},
        {"push": push(ANONYMOUS), "username": "hikaru"},
    ):
        answer = await client.post("/api/v1/subscriptions", json=body)
        assert answer.status_code == 201, answer.text
    token = await manage_token(engine, settings, FAN)
    bearer = {"Authorization": f"Bearer {token}"}
    mine = await client.post(
        "/api/v1/me/subscriptions", json={"push": push(MINE), "username": "hikaru"}, headers=bearer
    )
    assert mine.status_code == 201, mine.text
    assert mine.json()["status"] == "active" and mine.json()["manage_token"]
    more = await client.post(
        "/api/v1/me/subscriptions",
        json={"push": push(MINE), "username": "magnuscarlsen"},
        headers=bearer,
    )
    assert more.status_code == 201, more.text
    chat = await client.post(
        "/api/v1/me/subscriptions", json={"telegram": True, "username": "hikaru"}, headers=bearer
    )
    assert chat.status_code == 202, chat.text
    assert chat.json()["link"].startswith("https://t.me/")
    assert await rows(engine) == [
        ("email", FAN, None),
        ("email", "stay@example.com", None),
        ("push", ANONYMOUS, None),
        ("push", MINE, FAN),
        ("push", MINE, FAN),
        ("telegram", None, FAN),
    ]
    return token


async def test_the_admin_erase_of_an_address_takes_its_browsers_and_chats_too(
    client: httpx.AsyncClient,
    a_person_with_every_channel: str,
    admin: dict[str, str],
    engine: AsyncEngine,
) -> None:
    gone = await client.delete("/api/v1/subscribers/Fan@Example.COM", headers=admin)
    assert gone.status_code == 204, gone.text
    assert await rows(engine) == [
        ("email", "stay@example.com", None),
        ("push", ANONYMOUS, None),
    ]
    # Nothing is stored about it any more: 404, and still nothing changes.
    again = await client.delete("/api/v1/subscribers/fan@example.com", headers=admin)
    assert again.status_code == 404, again.text
    assert len(await rows(engine)) == 2


async def test_erasing_from_the_manage_token_takes_its_browsers_and_chats_too(
    client: httpx.AsyncClient, a_person_with_every_channel: str, engine: AsyncEngine
) -> None:
    bearer = {"Authorization": f"Bearer {a_person_with_every_channel}"}
    assert (await client.delete("/api/v1/me", headers=bearer)).status_code == 204
    assert await rows(engine) == [
        ("email", "stay@example.com", None),
        ("push", ANONYMOUS, None),
    ]


async def test_a_browser_subscribed_again_anonymously_stays_its_owners(
    client: httpx.AsyncClient, a_person_with_every_channel: str, engine: AsyncEngine
) -> None:
    """The browser is the person's once tied: subscribing it again from the home page
    (no manage token) neither unties it nor escapes the erase."""
    again = await client.post(
        "/api/v1/subscriptions", json={"push": push(MINE), "username": "hikaru"}
    )
    assert again.status_code == 201
    assert [r for r in await rows(engine) if r[1] == MINE] == [("push", MINE, FAN)] * 2


async def test_only_push_and_telegram_are_subscribed_from_a_manage_token(
    client: httpx.AsyncClient, a_person_with_every_channel: str, engine: AsyncEngine
) -> None:
    bearer = {"Authorization": f"Bearer {a_person_with_every_channel}"}
    before = await rows(engine)
    for body in (
        {"email": "other@example.com", "username": "hikaru"},
        {"webhook": {"url": "https://example.com/h", "format": "json"}, "username": "hikaru"},
        {"push": push(MINE), "telegram": True, "username": "hikaru"},
    ):
        answer = await client.post("/api/v1/me/subscriptions", json=body, headers=bearer)
        assert answer.status_code == 422, (body, answer.text)
    for headers in ({}, {"Authorization": "Bearer forged"}):
        answer = await client.post(
            "/api/v1/me/subscriptions",
            json={"push": push(MINE), "username": "hikaru"},
            headers=headers,
        )
        assert answer.status_code == 401
    assert await rows(engine) == before


async def test_the_admin_erase_finds_any_stored_spelling_and_refuses_malformed_input(
    client: httpx.AsyncClient, hikaru: object, admin: dict[str, str], engine: AsyncEngine
) -> None:
    answer = await client.post(
        "/api/v1/subscriptions", json={"email": "user@bücher.de", "username": "hikaru"}
    )
    assert answer.status_code == 201
    async with engine.begin() as conn:  # a row stored before addresses were canonical
        await conn.execute(
            text(
                "INSERT INTO email_subscriptions (channel, email, player_id, confirmed_at) "
                "SELECT 'email', 'Old.Style@Example.com', player_id, now() FROM players"
            )
        )
    for given, status in [
        ("USER@BÜCHER.DE", 204),  # stored canonical: user@xn--bcher-kva.de
        ("user@xn--bcher-kva.de", 404),  # the same address: gone already
        ("Old.Style@Example.com", 204),  # the legacy row, as it is stored
    ]:
        answer = await client.delete(f"/api/v1/subscribers/{given}", headers=admin)
        assert answer.status_code == status, (given, answer.text)
    assert await rows(engine) == []
    for malformed in ("a@b", "x@localhost", "a@b@c.com", "@example.com"):
        answer = await client.delete(f"/api/v1/subscribers/{malformed}", headers=admin)
        assert answer.status_code == 422, (malformed, answer.text)
    assert (await client.delete("/api/v1/subscribers/no-at-sign", headers=admin)).status_code == 404
