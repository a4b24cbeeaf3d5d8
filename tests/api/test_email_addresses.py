"""An address nobody could confirm is refused wherever an address is accepted (issue 18
item 8): a domain without a dot (`a@b`, `x@localhost`) is a 422 whose message says so,
changes nothing, and the OpenAPI schema states the rule beside `format: email`, so a
fuzzer generating from the schema never sends one as valid data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.main import create_app
from app.models import EmailSubscription, NotificationLog, Player
from app.schemas import EMAIL_PATTERN
from tests.conftest import make_settings

Factory = async_sessionmaker[AsyncSession]

DOTLESS = ["a@b", "x@localhost", "fan@test", "Fan@Example"]
THE_RULE = "must be a domain name with a dot"


async def nothing_stored(factory: Factory) -> bool:
    async with factory() as s:
        counts = [
            await s.scalar(select(func.count()).select_from(model))
            for model in (Player, EmailSubscription, NotificationLog)
        ]
    return counts == [0, 0, 0]


@pytest.mark.parametrize("email", DOTLESS)
async def test_subscribing_an_address_without_a_dot_in_its_domain_is_422(
    client: httpx.AsyncClient, hikaru: object, session_factory: Factory, email: str
) -> None:
    r = await client.post("/api/v1/subscriptions", json={"email": email, "username": "hikaru"})
    assert r.status_code == 422, r.text
    assert THE_RULE in r.text
    # One error, about the address: not one per channel the body could have been.
    [error] = r.json()["detail"]
    assert error["loc"][-1] == "email" and THE_RULE in error["msg"]
    assert await nothing_stored(session_factory)


async def test_a_body_naming_no_channel_is_one_clear_422(
    client: httpx.AsyncClient, hikaru: object, session_factory: Factory
) -> None:
    r = await client.post("/api/v1/subscriptions", json={"username": "hikaru"})
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert "exactly one channel" in error["msg"]
    assert await nothing_stored(session_factory)


@pytest.mark.parametrize("email", DOTLESS)
async def test_asking_for_a_manage_link_for_such_an_address_is_422(
    client: httpx.AsyncClient, session_factory: Factory, email: str
) -> None:
    r = await client.post("/api/v1/me/link", json={"email": email})
    assert r.status_code == 422, r.text
    assert THE_RULE in r.text
    assert await nothing_stored(session_factory)


async def test_the_forms_refuse_such_an_address_and_say_what_an_address_looks_like(
    client: httpx.AsyncClient, hikaru: object, session_factory: Factory
) -> None:
    home = await client.get("/")
    found = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert found, "no CSRF field on the home page"
    csrf = found.group(1)
    for step in ("lookup", "subscribe"):
        r = await client.post(
            "/subscribe",
            data={"csrf_token": csrf, "step": step, "username": "hikaru", "email": "x@localhost"},
        )
        assert r.status_code == 422
        assert 'aria-invalid="true"' in r.text and "name@example.com" in r.text
    r = await client.post("/send-link", data={"csrf_token": csrf, "email": "a@b"})
    assert r.status_code == 422
    assert 'aria-invalid="true"' in r.text and "name@example.com" in r.text
    assert await nothing_stored(session_factory)


@pytest.mark.parametrize("email", ["fan@helper.test", "Fan@Example.COM", "user@bücher.de"])
async def test_addresses_on_dotted_domains_still_subscribe(
    client: httpx.AsyncClient, hikaru: object, email: str
) -> None:
    r = await client.post("/api/v1/subscriptions", json={"email": email, "username": "hikaru"})
    assert r.status_code == 202, r.text


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    app = create_app(make_settings("postgresql+asyncpg://unused/unused", Path("/nonexistent")))
    return app.openapi()


def email_schemas(node: object) -> Iterator[dict[str, Any]]:
    """Every (sub)schema of the document that declares `format: email`."""
    if isinstance(node, dict):
        if node.get("format") == "email":
            yield node
        for value in node.values():
            yield from email_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from email_schemas(value)


def test_every_address_in_the_schema_states_the_rule(schema: dict[str, Any]) -> None:
    found = list(email_schemas(schema))
    # The subscription and manage-link bodies, the notifications filter, the erase path.
    assert len(found) >= 4
    for node in found:
        assert node["pattern"] == EMAIL_PATTERN, node
        for example in node.get("examples", []):
            assert re.search(node["pattern"], example), example
    assert not any(re.search(EMAIL_PATTERN, address) for address in DOTLESS)
