"""Rate limits on mutating routes (issue 4 §2, SPEC §3, §4).

Defaults: 5/minute per client address when anonymous, 10/minute per admin token;
429 with `Retry-After`; X-Forwarded-For counts only behind a trusted proxy. POSTs from
email links carrying a link we signed are limited per link, not per address (mailbox
providers send one-click unsubscribes for many people from a few addresses).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, NotificationLog, Player
from app.tokens import Purpose, TokenSigner
from tests.fakes.chesscom import ChessComSimulator

PEER = "203.0.113.7"  # the `client` fixture's address
PLAYERS = [f"player{i:02d}" for i in range(14)]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_enabled": True}


@pytest.fixture(autouse=True)
def players(simulator: ChessComSimulator) -> list[str]:
    for name in PLAYERS:
        simulator.add_player(name)
    return PLAYERS


@asynccontextmanager
async def client_at(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose TCP peer address is `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def track(
    client: httpx.AsyncClient, username: str = "player00", **headers: str
) -> httpx.Response:
    return await client.post("/api/v1/players", json={"username": username}, headers=headers)


OK = "ok"  # 201 tracked now, or 200 tracked already: either way, served


def outcome(r: httpx.Response) -> str | int:
    return OK if r.status_code in (200, 201) else r.status_code


async def burst(client: httpx.AsyncClient, n: int, **headers: str) -> list[str | int]:
    """`n` POSTs, each tracking a player; the outcome of each."""
    return [outcome(await track(client, PLAYERS[i % len(PLAYERS)], **headers)) for i in range(n)]


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429
    assert set(r.json()) == {"detail"} and isinstance(r.json()["detail"], str)
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= 60


async def test_anonymous_posts_beyond_five_a_minute_get_429_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    assert await burst(client, 5) == [OK] * 5
    r = await track(client, "player05")
    assert_limited(r)
    # Every mutating route shares the budget.
    assert_limited(
        await client.post(
            "/api/v1/subscriptions", json={"email": "a@example.com", "username": "player00"}
        )
    )
    assert_limited(await client.post("/api/v1/subscribers/erase-request", json={"email": "a@b.co"}))
    assert_limited(await client.delete("/api/v1/players/player00"))


async def test_reads_are_not_limited(client: httpx.AsyncClient) -> None:
    await burst(client, 6)
    for _ in range(20):
        assert (await client.get("/api/v1/players")).status_code == 200
        assert (await client.get("/api/v1/players/player00")).status_code == 200
    assert (await client.get("/healthz")).status_code == 200


async def test_each_client_address_has_its_own_budget(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert await burst(client, 6) == [OK] * 5 + [429]
    async with client_at(app, "198.51.100.20") as other:
        assert await burst(other, 6) == [OK] * 5 + [429]
    async with client_at(app, "2001:db8::1") as v6:
        assert (await track(v6)).status_code == 200
    assert (await track(client)).status_code == 429


async def test_an_admin_token_gets_ten_a_minute_of_its_own(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # The address's anonymous budget is spent; the token's is separate.
    assert (await burst(client, 6))[-1] == 429
    statuses = await burst(client, 11, **admin)
    assert statuses == [OK] * 10 + [429]
    limited = await track(client, **admin)
    assert_limited(limited)
    # Also on admin routes.
    assert_limited(await client.delete("/api/v1/subscribers/x@example.com", headers=admin))


async def test_an_invalid_bearer_token_is_counted_as_anonymous(
    client: httpx.AsyncClient,
) -> None:
    wrong = {"Authorization": "Bearer cch_" + "z" * 43}
    assert await burst(client, 3, **wrong) == [OK] * 3
    assert await burst(client, 2) == [OK] * 2
    # Made-up tokens buy no extra requests, neither do changing ones.
    assert_limited(await track(client, **wrong))
    assert_limited(await track(client, Authorization="Bearer another-guess"))
    assert_limited(await track(client))


async def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(
    client: httpx.AsyncClient,
) -> None:
    statuses = [
        outcome(await track(client, **{"X-Forwarded-For": f"192.0.2.{i}"})) for i in range(6)
    ]
    assert statuses == [OK] * 5 + [429]


@pytest.mark.parametrize(
    "settings_overrides",
    [{"rate_limit_enabled": True, "trusted_proxies": ["203.0.113.0/24", "10.0.0.0/8"]}],
)
async def test_x_forwarded_for_is_honoured_behind_a_trusted_proxy(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    def xff(value: str) -> dict[str, str]:
        return {"X-Forwarded-For": value}

    # Each real client behind the proxy has its own budget.
    assert await burst(client, 5, **xff("198.51.100.1")) == [OK] * 5
    assert_limited(await track(client, **xff("198.51.100.1")))
    assert (await track(client, **xff("198.51.100.2"))).status_code == 200
    # The right-most untrusted hop is the client: a spoofed left part changes nothing,
    # and trusted proxies further right are skipped.
    for i in range(4):
        spoofed = f"192.0.2.{i}, 198.51.100.2"
        assert (await track(client, **xff(spoofed))).status_code == 200
    assert_limited(await track(client, **xff("192.0.2.99, 198.51.100.2, 10.1.2.3")))
    # Garbage hops do not each become a budget of their own.
    garbage = [outcome(await track(client, **xff(f"bad-{i}"))) for i in range(6)]
    assert garbage == [OK] * 5 + [429]

    # A peer that is not a trusted proxy cannot choose its address.
    async with client_at(app, "192.0.2.200") as direct:
        statuses = [outcome(await track(direct, **xff(f"198.51.100.{50 + i}"))) for i in range(6)]
    assert statuses == [OK] * 5 + [429]


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_enabled": False}])
async def test_rate_limit_enabled_false_turns_it_off(client: httpx.AsyncClient) -> None:
    assert set(await burst(client, 14)) == {OK}
    assert set(await burst(client, 20)) == {OK}


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "rate_limit_enabled": True,
            "rate_limit_anonymous": "2/minute",
            "rate_limit_authenticated": "3/minute",
        }
    ],
)
async def test_the_limits_come_from_settings(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert await burst(client, 3) == [OK, OK, 429]
    assert await burst(client, 4, **admin) == [OK, OK, OK, 429]


async def test_a_rejected_request_changes_nothing(
    client: httpx.AsyncClient,
    simulator: ChessComSimulator,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await burst(client, 5)
    async with session_factory() as s:
        players_before = await s.scalar(select(func.count()).select_from(Player))
    calls_before = len(simulator.requests)

    assert_limited(await track(client, "player10"))
    assert_limited(
        await client.post(
            "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "player11"}
        )
    )
    assert len(simulator.requests) == calls_before, "a 429 never reaches Chess.com"
    assert (await client.get("/api/v1/players/player10")).status_code == 404
    assert (await client.get("/api/v1/players/player11")).status_code == 404
    async with session_factory() as s:
        assert await s.scalar(select(func.count()).select_from(Player)) == players_before
        assert await s.scalar(select(func.count()).select_from(EmailSubscription)) == 0
        assert await s.scalar(select(func.count()).select_from(NotificationLog)) == 0


async def subscribe_many(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession], n: int
) -> list[EmailSubscription]:
    for i in range(n):
        r = await client.post(
            "/api/v1/subscriptions", json={"email": f"fan{i}@example.com", "username": PLAYERS[i]}
        )
        assert r.status_code == 202
    async with session_factory() as s:
        return list(await s.scalars(select(EmailSubscription).order_by(EmailSubscription.id)))


@pytest.fixture
def signer(app: FastAPI) -> TokenSigner:
    s: TokenSigner = app.state.signer
    return s


@pytest.fixture
async def subscriber(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> EmailSubscription:
    """One subscription, not yet confirmed (fan0@example.com to player00)."""
    (sub,) = await subscribe_many(client, session_factory, 1)
    return sub


async def test_links_from_emails_have_a_budget_each_not_the_address_s(
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    signer: TokenSigner,
) -> None:
    subs = await subscribe_many(client, session_factory, 5)
    assert_limited(await track(client))  # the address's budget is spent ...
    for sub in subs:  # ... yet each person can still confirm, and unsubscribe in one click
        confirm = signer.sign(Purpose.confirm, sub.id, sub.email)
        r = await client.post(
            "/api/v1/subscriptions/confirm",
            params={"token": confirm},
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 200, r.text
        unsubscribe = signer.sign(Purpose.unsubscribe, sub.id, sub.email)
        r = await client.post(
            "/api/v1/unsubscribe",
            params={"token": unsubscribe},
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200, r.text
    # Replaying one link is limited like any anonymous client.
    replays = [
        (await client.post("/api/v1/unsubscribe", params={"token": unsubscribe})).status_code
        for _ in range(5)
    ]
    assert replays == [200] * 4 + [429]
    assert int(
        (await client.post("/api/v1/unsubscribe", params={"token": unsubscribe})).headers[
            "Retry-After"
        ]
    ) in range(1, 61)


async def test_forged_or_misused_links_count_against_the_sender_s_address(
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    signer: TokenSigner,
    subscriber: EmailSubscription,
) -> None:
    sub = subscriber
    confirm = signer.sign(Purpose.confirm, sub.id, sub.email)
    forged = TokenSigner("not-our-key").sign(Purpose.unsubscribe, sub.id, sub.email)
    json = {"Accept": "application/json"}
    statuses = [
        (await client.post("/api/v1/unsubscribe", params={"token": forged}, headers=json)),
        # A genuine link of another purpose is no key to this route's budget either.
        (await client.post("/api/v1/unsubscribe", params={"token": confirm}, headers=json)),
        (await client.post("/api/v1/subscribers/erase", params={"token": "x" * 40}, headers=json)),
        (await client.post("/api/v1/subscriptions/confirm", headers=json)),
    ]
    assert [r.status_code for r in statuses] == [400, 400, 400, 422]
    assert_limited(await client.post("/api/v1/unsubscribe", params={"token": forged}, headers=json))
    async with session_factory() as s:
        assert (await s.scalar(select(EmailSubscription))).is_active  # type: ignore[union-attr]


async def test_a_browser_told_to_wait_gets_a_page(
    client: httpx.AsyncClient, signer: TokenSigner, subscriber: EmailSubscription
) -> None:
    token = signer.sign(Purpose.confirm, subscriber.id, subscriber.email)
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for _ in range(5):
        r = await client.post(
            "/api/v1/subscriptions/confirm", params={"token": token}, headers=browser
        )
        assert r.status_code == 200
    r = await client.post("/api/v1/subscriptions/confirm", params={"token": token}, headers=browser)
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert r.headers["content-type"].startswith("text/html")
    assert "Please wait a moment" in r.text
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
