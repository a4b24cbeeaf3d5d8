"""Webhook subscriptions through the API (SPEC §4): refused URLs are 422 and change
nothing, before any resolver or connection is reached."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, NotificationLog, Player
from app.webhooks.guard import IPAddress
from tests.webhooks.test_guard import HOSTILE_ANSWERS, HOSTILE_LITERALS, PUBLIC, Tripwire

pytestmark = pytest.mark.usefixtures("clean_db")


async def count(factory: async_sessionmaker[AsyncSession], model: type) -> int:
    async with factory() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


def subscribe(url: str, fmt: str = "discord", username: str = "hikaru") -> dict[str, object]:
    return {"username": username, "webhook": {"url": url, "format": fmt}}


@pytest.fixture
def tripwire(app: FastAPI) -> Tripwire:
    wire = Tripwire()
    app.state.webhook_resolver = wire.resolver
    return wire


@pytest.fixture
def public_dns(app: FastAPI) -> list[str]:
    """Every name resolves to a public address (nothing connects to it: the API only checks)."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> Sequence[IPAddress]:
        asked.append(host)
        answer = HOSTILE_ANSWERS.get(host, [PUBLIC])
        return [ipaddress.ip_address(a) for a in answer]

    app.state.webhook_resolver = resolver
    return asked


@pytest.mark.parametrize("url", [u for u in HOSTILE_LITERALS if len(u) <= 2000])
async def test_hostile_url_is_422_and_changes_nothing(
    url: str,
    client: httpx.AsyncClient,
    tripwire: Tripwire,
    hikaru: dict[str, object],
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    answer = await client.post("/api/v1/subscriptions", json=subscribe(url))
    assert answer.status_code == 422, answer.text
    assert tripwire.reached == []
    assert await count(session_factory, Player) == 0  # refused before tracking
    assert await count(session_factory, EmailSubscription) == 0


@pytest.mark.parametrize("host", sorted(HOSTILE_ANSWERS))
async def test_name_resolving_inside_is_422(
    host: str, client: httpx.AsyncClient, public_dns: list[str], hikaru: dict[str, object]
) -> None:
    answer = await client.post("/api/v1/subscriptions", json=subscribe(f"https://{host}/x"))
    assert answer.status_code == 422
    assert "resolves to" in answer.json()["detail"]
    assert public_dns == [host]


async def test_public_url_is_stored_in_canonical_form_pending_with_one_verification(
    client: httpx.AsyncClient,
    public_dns: list[str],
    hikaru: dict[str, object],
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    answer = await client.post(
        "/api/v1/subscriptions",
        json=subscribe("https://Discord.com:443/api/webhooks/1/AbC#x", "discord"),
    )
    assert answer.status_code == 202
    assert answer.json() == {"status": "pending_confirmation"}
    async with session_factory() as s:
        sub = (await s.scalars(select(EmailSubscription))).one()
        logs = (await s.scalars(select(NotificationLog))).all()
    assert (sub.channel, sub.webhook_url, sub.webhook_format, sub.email) == (
        "webhook",
        "https://discord.com/api/webhooks/1/AbC",
        "discord",
        None,
    )
    assert sub.confirmed_at is None and sub.webhook_secret is None
    assert [log.notification_type for log in logs] == ["confirmation"]


async def test_json_gets_a_secret_once(
    client: httpx.AsyncClient,
    public_dns: list[str],
    hikaru: dict[str, object],
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    url = "https://hooks.example.com/in"
    first = (await client.post("/api/v1/subscriptions", json=subscribe(url, "json"))).json()
    assert first["secret"].startswith("whsec_")
    # Asked again while pending: a fresh opt-in with a fresh secret.
    second = (await client.post("/api/v1/subscriptions", json=subscribe(url, "json"))).json()
    assert second["secret"].startswith("whsec_") and second["secret"] != first["secret"]
    async with session_factory() as s, s.begin():
        sub = (await s.scalars(select(EmailSubscription))).one()
        assert sub.webhook_secret == second["secret"]
        sub.confirmed_at = func.now()
    # Once active, asking again changes nothing and shows no secret.
    third = await client.post("/api/v1/subscriptions", json=subscribe(url, "json"))
    assert third.status_code == 202 and third.json() == {"status": "pending_confirmation"}
    async with session_factory() as s:
        assert (await s.scalars(select(EmailSubscription))).one().webhook_secret == second["secret"]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "hikaru"},
        {
            "username": "hikaru",
            "email": "a@example.com",
            "webhook": {"url": "https://a.com/", "format": "json"},
        },
        {"username": "hikaru", "webhook": {"url": "https://a.com/", "format": "teams"}},
        {"username": "hikaru", "webhook": {"url": "https://a.com/"}},
        {"username": "hikaru", "webhook": {"url": "https://a.com/", "format": "json", "x": 1}},
    ],
)
async def test_malformed_requests_are_422(
    body: dict[str, object], client: httpx.AsyncClient, tripwire: Tripwire
) -> None:
    assert (await client.post("/api/v1/subscriptions", json=body)).status_code == 422
    assert tripwire.reached == []


async def test_verification_posts_to_one_url_are_capped_per_day(
    client: httpx.AsyncClient,
    public_dns: list[str],
    simulator: object,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    url = "https://hooks.example.com/victim"
    for name in ("alpha", "bravo", "charlie", "delta", "echo"):
        simulator.add_player(name)  # type: ignore[attr-defined]
        answer = await client.post("/api/v1/subscriptions", json=subscribe(url, username=name))
        assert answer.status_code == 202
    assert await count(session_factory, EmailSubscription) == 5
    assert await count(session_factory, NotificationLog) == 3


@pytest.mark.parametrize("settings_overrides", [{"require_email_confirmation": False}])
async def test_without_confirmation_the_webhook_is_active_at_once(
    client: httpx.AsyncClient, public_dns: list[str], hikaru: dict[str, object]
) -> None:
    answer = await client.post(
        "/api/v1/subscriptions", json=subscribe("https://hooks.example.com/in", "json")
    )
    assert answer.status_code == 201
    assert answer.json()["status"] == "active" and answer.json()["secret"].startswith("whsec_")
