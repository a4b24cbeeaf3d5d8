"""Subscriptions API (SPEC §4): double opt-in, confirm, unsubscribe, privacy, erasure."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import EmailSubscription, NotificationLog, Player
from app.subscriptions import service
from app.subscriptions.recipients import recipient
from app.tokens import Purpose, TokenSigner
from tests.fakes.chesscom import ChessComSimulator

pytestmark = pytest.mark.usefixtures("clean_db")

JSON = {"Accept": "application/json"}
FAN = "fan@example.com"


def signer(app: FastAPI) -> TokenSigner:
    s: TokenSigner = app.state.signer
    return s


async def sub_row(factory: async_sessionmaker[AsyncSession], email: str) -> EmailSubscription:
    async with factory() as s:
        row = await s.scalar(select(EmailSubscription).where(EmailSubscription.email == email))
        assert row is not None
        return row


async def outbox_count(factory: async_sessionmaker[AsyncSession], kind: str) -> int:
    async with factory() as s:
        return (
            await s.scalar(
                select(func.count(NotificationLog.id)).where(
                    NotificationLog.notification_type == kind
                )
            )
        ) or 0


@dataclass
class Fan:
    """fan@example.com, subscribed to hikaru and not confirmed yet."""

    app: FastAPI
    factory: async_sessionmaker[AsyncSession]

    async def row(self) -> EmailSubscription:
        return await sub_row(self.factory, FAN)

    async def token(self, purpose: Purpose) -> str:
        row = await self.row()
        return signer(self.app).sign(purpose, row.id, row.email)


@pytest.fixture
async def fan(
    client: httpx.AsyncClient,
    app: FastAPI,
    hikaru: object,
    session_factory: async_sessionmaker[AsyncSession],
) -> Fan:
    r = await client.post("/api/v1/subscriptions", json={"email": FAN, "username": "hikaru"})
    assert r.status_code == 202
    return Fan(app, session_factory)


async def test_subscribe_is_pending_and_queues_one_confirmation(
    client: httpx.AsyncClient,
    hikaru: object,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    r = await client.post(
        "/api/v1/subscriptions", json={"email": "Fan@Example.COM", "username": "Hikaru"}
    )
    assert r.status_code == 202
    assert r.json() == {"status": "pending_confirmation"}
    row = await sub_row(session_factory, "fan@example.com")
    assert row.confirmed_at is None and row.is_active
    assert await outbox_count(session_factory, "confirmation") == 1
    # The player was tracked on the fly.
    assert (await client.get("/api/v1/players/hikaru")).status_code == 200


async def test_repeating_a_subscription_reveals_nothing_and_respects_the_cooldown(
    client: httpx.AsyncClient, hikaru: object, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    body = {"email": "fan@example.com", "username": "hikaru"}
    first = await client.post("/api/v1/subscriptions", json=body)
    second = await client.post("/api/v1/subscriptions", json=body)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert await outbox_count(session_factory, "confirmation") == 1


async def test_unknown_player_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/subscriptions", json={"email": "a@example.com", "username": "ghost"}
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "username": "hikaru"},
        {"email": "a@example.com\r\nBcc: victim@example.com", "username": "hikaru"},
        {"email": "a@example.com", "username": "h"},
        {"email": "a@example.com"},
        {"username": "hikaru"},
        {"email": "a@example.com", "username": "hikaru", "is_active": False},
        {"email": ["a@example.com"], "username": "hikaru"},
    ],
)
async def test_bad_subscription_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
    hikaru: object,
    body: object,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    r = await client.post("/api/v1/subscriptions", json=body)
    assert r.status_code == 422
    async with session_factory() as s:
        assert await s.scalar(select(func.count(EmailSubscription.id))) == 0


async def test_confirm_get_changes_nothing_post_activates(
    client: httpx.AsyncClient, fan: Fan
) -> None:
    token = await fan.token(Purpose.confirm)

    page = await client.get("/api/v1/subscriptions/confirm", params={"token": token})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert '<form method="post"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert (await fan.row()).confirmed_at is None

    r = await client.post("/api/v1/subscriptions/confirm", params={"token": token}, headers=JSON)
    assert r.status_code == 200
    assert r.json() == {"status": "active", "username": "hikaru"}
    confirmed = await fan.row()
    assert confirmed.confirmed_at is not None
    assert confirmed.consent_ip == "203.0.113.7"
    # Idempotent, and a browser gets a page.
    again = await client.post("/api/v1/subscriptions/confirm", params={"token": token})
    assert again.status_code == 200 and "text/html" in again.headers["content-type"]
    assert (await fan.row()).confirmed_at == confirmed.confirmed_at
    assert (await client.get("/api/v1/players/hikaru")).json()["subscriber_count"] == 1


@pytest.mark.parametrize("token", ["", "garbage", "a" * 2000])
async def test_invalid_confirm_token_is_400(client: httpx.AsyncClient, token: str) -> None:
    r = await client.post("/api/v1/subscriptions/confirm", params={"token": token}, headers=JSON)
    assert r.status_code in (400, 422)
    page = await client.get("/api/v1/subscriptions/confirm", params={"token": "garbage"})
    assert page.status_code == 400 and "text/html" in page.headers["content-type"]


async def test_tokens_are_bound_to_purpose_and_subscription(
    client: httpx.AsyncClient, app: FastAPI, fan: Fan
) -> None:
    row = await fan.row()
    unsub = await fan.token(Purpose.unsubscribe)
    # An unsubscribe token cannot confirm.
    r = await client.post("/api/v1/subscriptions/confirm", params={"token": unsub}, headers=JSON)
    assert r.status_code == 400
    # A token for another address cannot act on this subscription.
    forged = signer(app).sign(Purpose.confirm, row.id, "attacker@example.com")
    r = await client.post("/api/v1/subscriptions/confirm", params={"token": forged}, headers=JSON)
    assert r.status_code == 400
    # Signed with another key: rejected.
    other = TokenSigner("another-secret").sign(Purpose.confirm, row.id, row.email)
    r = await client.post("/api/v1/subscriptions/confirm", params={"token": other}, headers=JSON)
    assert r.status_code == 400
    assert (await fan.row()).confirmed_at is None


async def test_unsubscribe_flow_with_one_click(client: httpx.AsyncClient, fan: Fan) -> None:
    await client.post(
        "/api/v1/subscriptions/confirm", params={"token": await fan.token(Purpose.confirm)}
    )
    token = await fan.token(Purpose.unsubscribe)

    page = await client.get("/api/v1/unsubscribe", params={"token": token})
    assert page.status_code == 200 and "hikaru" in page.text
    assert (await fan.row()).is_active

    r = await client.post(
        "/api/v1/unsubscribe",
        params={"token": token},
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert not (await fan.row()).is_active
    again = await client.post("/api/v1/unsubscribe", params={"token": token}, headers=JSON)
    assert again.status_code == 200 and again.json()["status"] == "unsubscribed"
    assert (await client.get("/api/v1/players/hikaru")).json()["subscriber_count"] == 0


async def test_resubscribing_after_unsubscribe_needs_a_new_confirmation(
    client: httpx.AsyncClient, fan: Fan
) -> None:
    await client.post(
        "/api/v1/subscriptions/confirm", params={"token": await fan.token(Purpose.confirm)}
    )
    await client.post("/api/v1/unsubscribe", params={"token": await fan.token(Purpose.unsubscribe)})
    assert (await fan.row()).consent_ip == "203.0.113.7"
    r = await client.post("/api/v1/subscriptions", json={"email": FAN, "username": "hikaru"})
    assert r.status_code == 202
    again = await fan.row()
    assert again.is_active and again.confirmed_at is None
    # The old proof of consent is for the old opt-in; the new one brings its own.
    assert again.consent_ip is None and again.consent_user_agent is None


@pytest.mark.parametrize("settings_overrides", [{"require_email_confirmation": False}])
async def test_without_confirmation_subscription_is_active_at_once(
    client: httpx.AsyncClient, hikaru: object, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    r = await client.post(
        "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "hikaru"}
    )
    assert r.status_code == 201
    assert r.json() == {"status": "active"}
    assert await outbox_count(session_factory, "confirmation") == 0
    assert (await client.get("/api/v1/players/hikaru")).json()["subscriber_count"] == 1


async def test_no_anonymous_response_contains_an_email(
    client: httpx.AsyncClient, hikaru: object, admin: dict[str, str]
) -> None:
    email = "secret.fan@example.com"
    r1 = await client.post("/api/v1/subscriptions", json={"email": email, "username": "hikaru"})
    anonymous = [
        r1,
        await client.get("/api/v1/players"),
        await client.get("/api/v1/players/hikaru"),
        await client.get("/api/v1/players/hikaru/subscriptions"),
        await client.get("/api/v1/notifications"),
        await client.delete(f"/api/v1/subscribers/{email}"),
    ]
    for r in anonymous:
        assert email not in r.text
        assert "secret.fan" not in r.text
    subs = await client.get("/api/v1/players/hikaru/subscriptions", headers=admin)
    assert subs.status_code == 200 and subs.json()[0]["email"] == email


async def subscribe_to_hikaru_and_magnus(
    client: httpx.AsyncClient, simulator: ChessComSimulator, email: str
) -> None:
    simulator.add_player("magnus")
    for player in ("hikaru", "magnus"):
        await client.post("/api/v1/subscriptions", json={"email": email, "username": player})


async def test_admin_erase_deletes_every_row_about_the_address(
    client: httpx.AsyncClient,
    simulator: ChessComSimulator,
    hikaru: object,
    admin: dict[str, str],
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await subscribe_to_hikaru_and_magnus(client, simulator, "gone@example.com")
    await client.post(
        "/api/v1/subscriptions", json={"email": "stay@example.com", "username": "hikaru"}
    )
    assert (await client.delete("/api/v1/subscribers/gone@example.com")).status_code == 401
    # A segment without an `@` is no address (404); a malformed address is a 422.
    assert (
        await client.delete("/api/v1/subscribers/not-an-email", headers=admin)
    ).status_code == 404
    assert (
        await client.delete("/api/v1/subscribers/not@an@email", headers=admin)
    ).status_code == 422
    r = await client.delete("/api/v1/subscribers/GONE@example.com", headers=admin)
    assert r.status_code == 204
    async with session_factory() as s:
        emails = set((await s.scalars(select(EmailSubscription.email))).all())
        logs = await s.scalar(select(func.count(NotificationLog.id)))
    assert emails == {"stay@example.com"}
    assert logs == 1


async def test_notifications_are_admin_only_and_filterable(
    client: httpx.AsyncClient, hikaru: object, admin: dict[str, str]
) -> None:
    await client.post(
        "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "hikaru"}
    )
    assert (await client.get("/api/v1/notifications")).status_code == 401
    r = await client.get(
        "/api/v1/notifications", headers=admin, params={"username": "hikaru", "status": "pending"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 1
    item = body["items"][0]
    assert item["email"] == "fan@example.com" and item["notification_type"] == "confirmation"
    none = await client.get("/api/v1/notifications", headers=admin, params={"status": "sent"})
    assert none.json()["total"] == 0
    bad = await client.get("/api/v1/notifications", headers=admin, params={"status": "bogus"})
    assert bad.status_code == 422


async def test_erase_link_still_erases_when_the_row_it_named_is_gone(
    client: httpx.AsyncClient,
    app: FastAPI,
    simulator: ChessComSimulator,
    hikaru: object,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await subscribe_to_hikaru_and_magnus(client, simulator, "fan@example.com")
    first = await sub_row(session_factory, "fan@example.com")
    token = signer(app).sign(Purpose.erase, first.id, first.email)
    async with session_factory() as s, s.begin():
        await s.delete(await s.get(EmailSubscription, first.id))
    r = await client.post("/api/v1/subscribers/erase", params={"token": token}, headers=JSON)
    assert r.status_code == 200
    async with session_factory() as s:
        assert await s.scalar(select(func.count(EmailSubscription.id))) == 0


async def test_an_international_domain_is_stored_in_its_ascii_form(
    client: httpx.AsyncClient,
    hikaru: object,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    for typed in ("Fan@Bücher.de", "fan@xn--bcher-kva.DE"):
        r = await client.post("/api/v1/subscriptions", json={"email": typed, "username": "hikaru"})
        assert r.status_code == 202, r.text
    async with session_factory() as s:
        emails = list(await s.scalars(select(EmailSubscription.email)))
    assert emails == ["fan@xn--bcher-kva.de"], "one address, however it was typed"


@pytest.mark.parametrize("email", ["josé@example.com", "用户@例子.广告"])
async def test_a_non_ascii_local_part_is_refused_with_a_clear_422(
    client: httpx.AsyncClient,
    hikaru: object,
    session_factory: async_sessionmaker[AsyncSession],
    email: str,
) -> None:
    r = await client.post("/api/v1/subscriptions", json={"email": email, "username": "hikaru"})
    assert r.status_code == 422
    assert "non-ASCII characters before the @" in r.json()["detail"][0]["msg"]
    async with session_factory() as s:
        assert await s.scalar(select(func.count(EmailSubscription.id))) == 0


async def test_a_subscription_created_meanwhile_by_another_request_is_used_not_an_error(
    app: FastAPI,
    client: httpx.AsyncClient,
    hikaru: object,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The insert race: both see no row, the second insert hits the unique key and reuses."""
    await client.post("/api/v1/players", json={"username": "hikaru"})
    email_channel = app.state.channels["email"]
    async with session_factory() as first, session_factory() as second:
        player = await first.scalar(select(Player).where(Player.username == "hikaru"))
        assert player is not None
        first.add(EmailSubscription(email="race@example.com", player_id=player.player_id))
        await first.flush()  # inserted, not committed: invisible to `second`
        racing = asyncio.create_task(
            service.subscribe_to_player(
                second,
                settings,
                recipient=await recipient(email_channel, {"email": "race@example.com"}),
                player=player,
            )
        )
        await asyncio.sleep(0.3)  # `second` now waits on the unique index
        assert not racing.done()
        await first.commit()
        assert (await asyncio.wait_for(racing, 10)).status == "pending_confirmation"
        await second.commit()
    async with session_factory() as s:
        count = await s.scalar(
            select(func.count(EmailSubscription.id)).where(
                EmailSubscription.email == "race@example.com"
            )
        )
    assert count == 1
