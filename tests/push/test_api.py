"""Subscribing a browser and a Telegram chat through the API (SPEC §4, §11; issue 20
items 1, 2, 5 and 8): one channel per request, a push subscription is active at once,
bad endpoints and keys are 422 with nothing stored, Telegram answers a deep link."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from app.models import EmailSubscription
from app.push.vapid import b64url
from app.webhooks.guard import PUBLIC_URL_PATTERN, RefusedURL, parse_target
from tests.conftest import make_settings

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
    assert set(answer.json()) == {"status", "manage_token"}  # the browser's way back
    assert answer.json()["status"] == "active"
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


def subscribe_choices(**settings: object) -> list[set[str]]:
    """The keys each `oneOf` choice of POST /subscriptions requires, in a deployment."""
    spec = create_app(
        make_settings("postgresql+asyncpg://unused/unused", Path("/nonexistent"), **settings)
    ).openapi()
    body = spec["paths"]["/api/v1/subscriptions"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    choices = [spec["components"]["schemas"][c["$ref"].rsplit("/", 1)[1]] for c in schema["oneOf"]]
    assert all(c["additionalProperties"] is False for c in choices)
    # Whatever was hidden, every reference in the document still names a schema.
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])
    assert all("telegram" not in e for e in schema["examples"]) or "telegram_bot_token" in settings
    return [set(c["required"]) - {"username"} for c in choices]


def test_the_contract_is_one_of_the_channels_this_site_offers() -> None:
    # SPEC §11: Telegram only when the site runs a bot, hidden otherwise (so a
    # `telegram` body is schema-invalid where it would be refused).
    assert subscribe_choices() == [{"email"}, {"webhook"}, {"push"}]
    assert subscribe_choices(telegram_bot_token="123456:" + "A" * 35) == [
        {"email"},
        {"webhook"},
        {"push"},
        {"telegram"},
    ]


def test_the_url_rule_is_stated_as_the_deployment_applies_it() -> None:
    spec = create_app(
        make_settings("postgresql+asyncpg://unused/unused", Path("/nonexistent"))
    ).openapi()
    schemas = spec["components"]["schemas"]
    for model, field in (("WebhookIn", "url"), ("PushIn", "endpoint")):
        assert schemas[model]["properties"][field]["pattern"] == PUBLIC_URL_PATTERN
    assert schemas["PushKeysIn"]["properties"]["p256dh"]["format"] == "p256-public-key"
    relaxed = create_app(
        make_settings(
            "postgresql+asyncpg://unused/unused", Path("/nonexistent"), webhook_allow_private=True
        )
    ).openapi()["components"]["schemas"]
    assert relaxed["WebhookIn"]["properties"]["url"]["pattern"] == "^https?://"


@pytest.mark.parametrize(
    ("errno", "status"), [(socket.EAI_AGAIN, 503), (socket.EAI_NONAME, 422)]
)
async def test_a_lookup_that_cannot_answer_now_is_a_503_and_no_such_name_a_422(
    app: FastAPI,
    client: httpx.AsyncClient,
    hikaru: object,
    engine: AsyncEngine,
    errno: int,
    status: int,
) -> None:
    """A resolver failing for now says nothing against the URL: try again (503). A name
    that does not exist is the URL's fault (422). Either way nothing is stored."""

    async def resolver(host: str, port: int) -> list[Any]:
        raise socket.gaierror(errno, "no answer")  # as getaddrinfo raises, no query sent

    app.state.webhook_resolver = resolver
    endpoint = "https://push.example.net/send/abc"
    for body in (
        {"username": "hikaru", "push": push(endpoint=endpoint)},
        {"username": "hikaru", "webhook": {"url": endpoint, "format": "json"}},
    ):
        answer = await client.post("/api/v1/subscriptions", json=body)
        assert answer.status_code == status, answer.text
    assert await count(engine) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x",
        "https://ntfy.sh/my_topic",
        "https://a.b-c.io:8443/p?q=1&r=%20",
        "https://discord.com/api/webhooks/123456/abcdef",
    ],
)
def test_the_public_url_pattern_admits_what_the_guard_admits(url: str) -> None:
    assert re.fullmatch(PUBLIC_URL_PATTERN, url)
    parse_target(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "https://localhost/x",
        "https://10.0.0.1/x",
        "https://user:pw@hooks.example.com/",
        "https://hooks/x",
    ],
)
def test_the_public_url_pattern_refuses_what_the_guard_refuses(url: str) -> None:
    assert not re.fullmatch(PUBLIC_URL_PATTERN, url)
    with pytest.raises(RefusedURL):
        parse_target(url, allow_private=False)


async def test_telegram_is_refused_without_a_bot(
    client: httpx.AsyncClient, hikaru: object, engine: AsyncEngine
) -> None:
    answer = await client.post(
        "/api/v1/subscriptions", json={"username": "hikaru", "telegram": True}
    )
    assert answer.status_code == 422
    assert await count(engine) == 0
