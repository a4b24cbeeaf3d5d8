"""A browser's own push subscriptions (issue 20 item 6, SPEC §4, §11): "Notify this
browser" answers a manage token bound to the browser's push endpoint; with it, /push/me
lists, pauses, resumes and removes that browser's subscriptions, and erases them all.
It opens nothing else: another browser's subscription is 404, any other token 401.
(The page that keeps the token and the worker obeying a pause: tests/e2e/test_push_browser.py.)"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import EmailSubscription
from app.push.vapid import b64url
from app.tokens import Purpose, TokenSigner
from tests.fakes.chesscom import ChessComSimulator

P256DH = "BJxLCLEHd7zFlcBQ2Y3urUMN-N5CxqtlzuKYlRV3N4-I0YGpYvoWhhYBYfJZs7nRk1cHlgeJ9MYqmNA26srQ4fs"
AUTH = b64url(b"0123456789abcdef")
PHONE = "http://127.0.0.1:9/wpush/v2/phone"  # loopback: allowed in this module only
LAPTOP = "http://127.0.0.1:9/wpush/v2/laptop"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture
def players(simulator: ChessComSimulator, hikaru: object) -> None:
    simulator.add_player("MagnusCarlsen", name="Magnus Carlsen", player_id=3889224)


async def notify(client: httpx.AsyncClient, endpoint: str, username: str) -> str:
    """'Notify this browser' as the page does it; the manage token of the answer."""
    answer = await client.post(
        "/api/v1/subscriptions",
        json={
            "username": username,
            "push": {"endpoint": endpoint, "keys": {"p256dh": P256DH, "auth": AUTH}},
        },
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["manage_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mine(client: httpx.AsyncClient, token: str) -> dict[str, object]:
    answer = await client.get("/api/v1/push/me", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def listed(body: dict[str, object]) -> list[tuple[str, bool, bool]]:
    subs = body["subscriptions"]
    assert isinstance(subs, list)
    return [(s["username"], s["active"], s["paused"]) for s in subs]


async def test_a_browser_lists_pauses_resumes_and_removes_its_own_subscriptions(
    client: httpx.AsyncClient, players: None
) -> None:
    first = await notify(client, PHONE, "hikaru")
    second = await notify(client, PHONE, "magnuscarlsen")
    # Every token of the browser opens all of its subscriptions, and shows no endpoint.
    body = await mine(client, first)
    assert body["push_service"] == "127.0.0.1" and PHONE not in str(body)
    assert listed(body) == [("hikaru", True, False), ("magnuscarlsen", True, False)]
    assert await mine(client, second) == body
    ids = {s["username"]: s["id"] for s in body["subscriptions"]}  # type: ignore[attr-defined]

    paused = await client.patch(
        f"/api/v1/push/me/subscriptions/{ids['hikaru']}",
        json={"paused": True},
        headers=bearer(first),
    )
    assert paused.status_code == 200, paused.text
    assert listed(paused.json()) == [("hikaru", True, True), ("magnuscarlsen", True, False)]
    resumed = await client.patch(
        f"/api/v1/push/me/subscriptions/{ids['hikaru']}",
        json={"paused": False, "filters": {"time_classes": ["bullet"]}},
        headers=bearer(first),
    )
    assert resumed.status_code == 200
    (hikaru, _) = resumed.json()["subscriptions"]
    assert not hikaru["paused"] and hikaru["filters"]["time_classes"] == ["bullet"]

    removed = await client.delete(
        f"/api/v1/push/me/subscriptions/{ids['magnuscarlsen']}", headers=bearer(first)
    )
    assert removed.status_code == 204
    assert listed(await mine(client, first)) == [
        ("hikaru", True, False),
        ("magnuscarlsen", False, False),
    ]


async def test_a_token_opens_its_own_browser_only(
    client: httpx.AsyncClient, players: None, engine: AsyncEngine
) -> None:
    phone = await notify(client, PHONE, "hikaru")
    laptop = await notify(client, LAPTOP, "hikaru")
    laptop_ids = [s["id"] for s in (await mine(client, laptop))["subscriptions"]]  # type: ignore[attr-defined]
    for answer in (
        await client.patch(
            f"/api/v1/push/me/subscriptions/{laptop_ids[0]}",
            json={"paused": True},
            headers=bearer(phone),
        ),
        await client.delete(
            f"/api/v1/push/me/subscriptions/{laptop_ids[0]}", headers=bearer(phone)
        ),
    ):
        assert answer.status_code == 404, answer.text
    assert listed(await mine(client, laptop)) == [("hikaru", True, False)]
    async with engine.connect() as conn:
        active = await conn.scalar(
            select(func.count()).where(EmailSubscription.is_active, ~EmailSubscription.paused)
        )
    assert active == 2


async def test_forged_foreign_or_missing_tokens_are_401(
    client: httpx.AsyncClient, players: None, settings: object
) -> None:
    token = await notify(client, PHONE, "hikaru")
    sub_id = (await mine(client, token))["subscriptions"][0]["id"]  # type: ignore[index]
    signer = TokenSigner(settings.resolved_secret_key())  # type: ignore[attr-defined]
    other_purposes = [
        signer.sign(purpose, sub_id, PHONE)
        for purpose in (Purpose.manage, Purpose.webhook_manage, Purpose.unsubscribe)
    ]
    forged = TokenSigner("another installation's key").sign(Purpose.push_manage, sub_id, PHONE)
    wrong_endpoint = signer.sign(Purpose.push_manage, sub_id, LAPTOP)
    for headers in [
        {},
        bearer(token[:-2] + "xx"),
        bearer(forged),
        bearer(wrong_endpoint),
        *map(bearer, other_purposes),
    ]:
        answer = await client.get("/api/v1/push/me", headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert "push manage token" in answer.json()["detail"]


async def test_erasing_the_browser_removes_its_rows_and_the_token(
    client: httpx.AsyncClient, players: None, engine: AsyncEngine
) -> None:
    token = await notify(client, PHONE, "hikaru")
    await notify(client, PHONE, "magnuscarlsen")
    other = await notify(client, LAPTOP, "hikaru")
    assert (await client.delete("/api/v1/push/me", headers=bearer(token))).status_code == 204
    assert (await client.get("/api/v1/push/me", headers=bearer(token))).status_code == 401
    async with engine.connect() as conn:
        left = (await conn.execute(select(EmailSubscription.push_endpoint))).scalars().all()
    assert left == [LAPTOP]
    assert listed(await mine(client, other)) == [("hikaru", True, False)]
    # Subscribing again makes a new row and a new token that works.
    again = await notify(client, PHONE, "hikaru")
    assert listed(await mine(client, again)) == [("hikaru", True, False)]
