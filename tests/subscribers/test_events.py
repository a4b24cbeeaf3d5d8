"""`events` on every subscription (SPEC §4, issue 19 item 4): a non-empty subset of
`session` and `stream`, default both, chosen when subscribing (API and home page),
shown and changed through `/me` and the manage pages, and obeyed by fan-out: the one
INSERT … SELECT gives a `stream_started` event only to subscriptions that chose `stream`,
a session only to those that chose `session`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, NotificationLog, Player
from app.models.subscription import EVENT_NOTIFICATION_TYPES
from app.notifications.outbox import fan_out, record_event
from app.notifications.payloads import NoPayload
from app.subscriptions.me import sign_manage_token
from app.tokens import TokenSigner
from app.webhooks.guard import IPAddress
from tests.fakes.chesscom import ChessComSimulator
from tests.subscribers.test_fanout import game, session_event
from tests.subscribers.test_pages import ManageForms, csrf_of, form_page, subscribed

pytestmark = pytest.mark.usefixtures("clean_db")
Factory = async_sessionmaker[AsyncSession]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"require_email_confirmation": False}


@pytest.fixture(autouse=True)
def players(simulator: ChessComSimulator) -> None:
    simulator.add_player("Hikaru", name="Hikaru Nakamura", title="GM", player_id=15448422)


@pytest.fixture
def public_dns(app: FastAPI) -> None:
    """Every webhook host resolves to a public address (the API only checks; nothing
    connects to it)."""

    async def resolver(host: str, port: int) -> Sequence[IPAddress]:
        return [ipaddress.ip_address("93.184.216.34")]

    app.state.webhook_resolver = resolver


async def stored_events(factory: Factory) -> dict[str, list[str]]:
    async with factory() as s:
        rows = await s.execute(select(EmailSubscription.email, EmailSubscription.events))
        return {email or "": list(events) for email, events in rows.all()}


async def count_subscriptions(factory: Factory) -> int:
    async with factory() as s:
        return await s.scalar(select(func.count(EmailSubscription.id))) or 0


# -- fan-out ------------------------------------------------------------------------------


async def add_sub(session: AsyncSession, email: str, events: list[str]) -> int:
    sub = EmailSubscription(email=email, player_id=1, confirmed_at=datetime.now(UTC), events=events)
    session.add(sub)
    await session.flush()
    return sub.id


async def audience(session: AsyncSession, event_id: int) -> set[int]:
    rows = await session.scalars(
        select(NotificationLog.subscription_id).where(NotificationLog.event_id == event_id)
    )
    return set(rows)


async def test_fan_out_reaches_only_the_subscriptions_that_chose_the_events_kind(
    session_factory: Factory,
) -> None:
    assert EVENT_NOTIFICATION_TYPES == {"session": "live_match", "stream": "stream_started"}
    async with session_factory() as s, s.begin():
        s.add(Player(player_id=1, username="hikaru", name="Hikaru Nakamura"))
        await s.flush()
        both = await add_sub(s, "both@example.com", ["session", "stream"])
        sessions = await add_sub(s, "sessions@example.com", ["session"])
        streams = await add_sub(s, "streams@example.com", ["stream"])
        live = await session_event(s, [game("blitz", rated=True)])
        assert await fan_out(s, live) == 2
        assert await audience(s, live) == {both, sessions}
        # A stream going live (the kind sources record as `stream_started`).
        stream = await record_event(
            s,
            "stream_started",  # type: ignore[arg-type]
            "stream:chesscom:hikaru:2026-12-07T05:00:00Z",
            NoPayload(),
            player_id=1,
        )
        assert await fan_out(s, stream) == 2
        assert await audience(s, stream) == {both, streams}
        types = await s.scalars(
            select(NotificationLog.notification_type).where(NotificationLog.event_id == stream)
        )
        assert set(types) == {"stream_started"}


# -- the API ------------------------------------------------------------------------------


async def test_subscribing_stores_the_chosen_events_and_defaults_to_both(
    client: httpx.AsyncClient, session_factory: Factory
) -> None:
    for email, extra in [
        ("default@example.com", {}),
        ("streams@example.com", {"events": ["stream"]}),
        ("both@example.com", {"events": ["stream", "session"]}),
        ("repeat@example.com", {"events": ["stream", "stream"]}),
    ]:
        r = await client.post(
            "/api/v1/subscriptions", json={"email": email, "username": "hikaru", **extra}
        )
        assert r.status_code == 201, r.text
    assert await stored_events(session_factory) == {
        "default@example.com": ["session", "stream"],
        "streams@example.com": ["stream"],
        "both@example.com": ["session", "stream"],  # canonical order
        "repeat@example.com": ["stream"],  # no repeats
    }


@pytest.mark.parametrize(
    "events", [[], ["games"], ["session", "session", "stream"], "session", None, [1]]
)
async def test_events_outside_the_two_kinds_are_422_and_store_nothing(
    client: httpx.AsyncClient, session_factory: Factory, events: object
) -> None:
    r = await client.post(
        "/api/v1/subscriptions",
        json={"email": "fan@example.com", "username": "hikaru", "events": events},
    )
    if events is None:  # null is "not given": the default
        assert r.status_code == 201, r.text
        return
    assert r.status_code == 422, r.text
    assert await count_subscriptions(session_factory) == 0


async def test_me_shows_and_changes_events(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    r = await client.post(
        "/api/v1/subscriptions",
        json={"email": "fan@example.com", "username": "hikaru", "events": ["session"]},
    )
    assert r.status_code == 201, r.text
    async with session_factory() as s:
        sub_id = await s.scalar(select(EmailSubscription.id))
    assert sub_id is not None
    signer: TokenSigner = app.state.signer
    headers = {"Authorization": f"Bearer {sign_manage_token(signer, sub_id, 'fan@example.com')}"}
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["subscriptions"][0]["events"] == ["session"]

    path = f"/api/v1/me/subscriptions/{sub_id}"
    r = await client.patch(path, headers=headers, json={"events": ["stream"]})
    assert r.status_code in (200, 204), r.text
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["subscriptions"][0]["events"] == ["stream"]
    # Filters are untouched by an events change, and an empty choice is refused.
    assert me["subscriptions"][0]["filters"]["time_classes"] == ["bullet", "blitz", "rapid"]
    r = await client.patch(path, headers=headers, json={"events": []})
    assert r.status_code == 422, r.text
    assert await stored_events(session_factory) == {"fan@example.com": ["stream"]}


async def test_a_webhook_subscription_carries_events_too(
    client: httpx.AsyncClient, session_factory: Factory, public_dns: None
) -> None:
    r = await client.post(
        "/api/v1/subscriptions",
        json={
            "username": "hikaru",
            "webhook": {"url": "https://discord.com/api/webhooks/1/abc", "format": "discord"},
            "events": ["stream"],
        },
    )
    assert r.status_code == 201, r.text
    async with session_factory() as s:
        sub = (await s.scalars(select(EmailSubscription))).one()
    assert (sub.channel, sub.events) == ("webhook", ["stream"])


async def test_an_active_subscription_keeps_its_events_when_asked_again(
    client: httpx.AsyncClient, session_factory: Factory
) -> None:
    """As with filters: asking again cannot retune someone's alerts (the manage link can)."""
    body = {"email": "fan@example.com", "username": "hikaru", "events": ["session"]}
    assert (await client.post("/api/v1/subscriptions", json=body)).status_code == 201
    body["events"] = ["stream"]
    assert (await client.post("/api/v1/subscriptions", json=body)).status_code == 201
    assert await stored_events(session_factory) == {"fan@example.com": ["session"]}


# -- the pages ----------------------------------------------------------------------------


async def test_the_home_pages_email_form_offers_and_stores_events(
    client: httpx.AsyncClient, session_factory: Factory
) -> None:

    step = {"csrf_token": await form_page(client), "username": "hikaru"}
    r = await client.post("/subscribe", data={**step, "step": "lookup", "email": "f@example.com"})
    assert r.status_code == 200, r.text
    assert 'name="ev_session"' in r.text and 'name="ev_stream"' in r.text
    choice = {"step": "subscribe", "email": "f@example.com", "tc_blitz": "1", "events_shown": "1"}
    # Both boxes left unticked: refused with a message, nothing stored.
    r = await client.post("/subscribe", data={**step, **choice, "csrf_token": csrf_of(r.text)})
    assert r.status_code == 422 and "at least one kind of alert" in r.text
    assert await count_subscriptions(session_factory) == 0
    r = await client.post(
        "/subscribe", data={**step, **choice, "csrf_token": csrf_of(r.text), "ev_stream": "1"}
    )
    assert r.status_code == 200, r.text
    assert await stored_events(session_factory) == {"f@example.com": ["stream"]}


async def test_the_manage_page_changes_a_subscriptions_events(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:

    token = await subscribed(app, session_factory)
    r = await client.get("/manage", params={"token": token})
    assert r.status_code == 200 and 'name="ev_stream"' in r.text
    forms = ManageForms(client, token, csrf_of(r.text))
    async with session_factory() as s:
        sub_id = await s.scalar(select(EmailSubscription.id))
    path = f"/subscriptions/{sub_id}"
    r = await forms.post(path, action="filters", tc_rapid="1", events_shown="1")
    assert r.status_code == 422 and "at least one kind of alert" in r.text
    r = await forms.post(path, action="filters", tc_rapid="1", events_shown="1", ev_session="1")
    assert r.status_code == 303, r.text
    assert await stored_events(session_factory) == {"fan@example.com": ["session"]}
    r = await client.get("/manage", params={"token": token})
    assert f'id="sub-{sub_id}-ev-stream" >' in r.text  # shown unticked
