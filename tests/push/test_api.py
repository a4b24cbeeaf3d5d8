"""Subscribing a browser and a Telegram chat through the API (SPEC §4, §11; issue 20
items 1, 2, 5 and 8): one channel per request, a push subscription is active at once,
bad endpoints and keys are 422 with nothing stored, Telegram answers a deep link."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import EmailSubscription
from app.push.vapid import b64url

P256DH = "BJxLCLEHd7zFlcBQ2Y3urUMN-N5CxqtlzuKYlRV3N4-I0YGpYvoWhhYBYfJZs7nRk1cHlgeJ9MYqmNA26srQ4fs"
AUTH = b64url(b"0123456789abcdef")
ENDPOINT = "http://127.0.0.1:9/wpush/v2/abc"  # loopback: allowed in this module only


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(EmailSubscription)) or 0)


def push(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {"endpoint": ENDPOINT, "keys": {"p256dh": P256DH, "auth": AUTH}}
    body.update(changes)
    return body


async def test_the_push_key_is_the_vapid_public_key(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/push/key")
    assert answer.status_code == 200
    key = answer.json()["public_key"]
    assert len(key) == 87 and key.startswith("B")
    assert (await client.get("/api/v1/push/key")).json()["public_key"] == key


async def test_a_push_subscription_is_active_at_once(
    client: httpx.AsyncClient, hikaru: object, engine: AsyncEngine
) -> None:
    answer = await client.post("/api/v1/subscriptions", json={"username": "hikaru", "push": push()})
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"status": "active"}
    async with engine.connect() as conn:
        row = (await conn.execute(select(EmailSubscription))).one()
    assert row.channel == "push" and row.push_endpoint == ENDPOINT
    assert (row.push_p256dh, row.push_auth) == (P256DH, AUTH)
    assert row.confirmed_at is not None and row.is_active
    # Again (the same browser): still one row, still active.
    again = await client.post("/api/v1/subscriptions", json={"username": "hikaru", "push": push()})
    assert again.status_code in (200, 201) and again.json()["status"] == "active"
    assert await count(engine) == 1


@pytest.mark.parametrize(
    "bad",
    [
        push(endpoint="ftp://push.example/x"),
        push(keys={"p256dh": "B" + "A" * 86, "auth": AUTH}),  # not a point on P-256
        push(keys={"p256dh": P256DH, "auth": "short"}),
        push(keys={"p256dh": P256DH}),
        push(extra=1),
    ],
)
async def test_a_bad_push_subscription_is_422_and_stores_nothing(
    client: httpx.AsyncClient, hikaru: object, engine: AsyncEngine, bad: dict[str, object]
) -> None:
    answer = await client.post("/api/v1/subscriptions", json={"username": "hikaru", "push": bad})
    assert answer.status_code == 422, answer.text
    assert await count(engine) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"username": "hikaru", "email": "fan@example.com", "push": push()},
        {"username": "hikaru", "email": "fan@example.com",
         "webhook": {"url": "https://discord.com/api/webhooks/1/x", "format": "discord"}},
        {"username": "hikaru", "telegram": True, "push": push()},
        {"username": "hikaru", "telegram": False},
        {"username": "hikaru"},
    ],
)  # fmt: skip
async def test_exactly_one_channel_per_request(
    client: httpx.AsyncClient, hikaru: object, engine: AsyncEngine, body: dict[str, object]
) -> None:
    answer = await client.post("/api/v1/subscriptions", json=body)
    assert answer.status_code == 422, answer.text
    assert await count(engine) == 0


async def test_the_contract_is_one_of_the_four_channels(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/api/v1/subscriptions"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    choices = [spec["components"]["schemas"][c["$ref"].rsplit("/", 1)[1]] for c in schema["oneOf"]]
    keys = [set(c["required"]) - {"username"} for c in choices]
    assert keys == [{"email"}, {"webhook"}, {"push"}, {"telegram"}]
    assert all(c["additionalProperties"] is False for c in choices)


async def test_telegram_is_refused_without_a_bot(
    client: httpx.AsyncClient, hikaru: object, engine: AsyncEngine
) -> None:
    answer = await client.post(
        "/api/v1/subscriptions", json={"username": "hikaru", "telegram": True}
    )
    assert answer.status_code == 422
    assert await count(engine) == 0
