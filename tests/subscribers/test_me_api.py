"""The subscriber self-service API (SPEC §4 `/me`): a manage token scoped to one address."""

from __future__ import annotations

import re
import time

import httpx
import itsdangerous
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, NotificationLog, SubscriberPreferences
from app.subscriptions.me import sign_manage_token
from app.tokens import Purpose, TokenSigner
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"require_email_confirmation": False}


@pytest.fixture(autouse=True)
def players(simulator: ChessComSimulator) -> None:
    simulator.add_player("Hikaru", name="Hikaru Nakamura", title="GM", player_id=15448422)
    simulator.add_player("MagnusCarlsen", name="Magnus Carlsen", title="GM", player_id=3889224)


def signer(app: FastAPI) -> TokenSigner:
    s: TokenSigner = app.state.signer
    return s


async def subscribe(client: httpx.AsyncClient, email: str, username: str, **extra: object) -> None:
    r = await client.post(
        "/api/v1/subscriptions", json={"email": email, "username": username, **extra}
    )
    assert r.status_code == 201, r.text


async def sub_ids(factory: async_sessionmaker[AsyncSession], email: str) -> list[int]:
    async with factory() as s:
        rows = await s.scalars(
            select(EmailSubscription.id)
            .where(EmailSubscription.email == email)
            .order_by(EmailSubscription.id)
        )
        return list(rows)


async def bearer(
    app: FastAPI, factory: async_sessionmaker[AsyncSession], email: str
) -> dict[str, str]:
    ids = await sub_ids(factory, email)
    return {"Authorization": f"Bearer {sign_manage_token(signer(app), ids[0], email)}"}


async def fan_signed_in(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: async_sessionmaker[AsyncSession],
    *usernames: str,
) -> dict[str, str]:
    """fan@example.com subscribes to each player; the header its manage link stands for."""
    for username in usernames:
        await subscribe(client, "fan@example.com", username)
    return await bearer(app, factory, "fan@example.com")


async def test_get_me_lists_the_address_and_its_subscriptions(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, "fan@example.com", "hikaru")
    await subscribe(
        client,
        "fan@example.com",
        "magnuscarlsen",
        filters={"time_classes": ["rapid", "blitz", "rapid"], "rated_only": True},
    )
    await subscribe(client, "other@example.com", "hikaru")
    r = await client.get(
        "/api/v1/me", headers=await bearer(app, session_factory, "fan@example.com")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["email"] == "fan@example.com"
    assert body["timezone"] == "UTC"
    assert body["delivery"] == {"mode": "immediate", "digest_hour": 8, "quiet_hours": None}
    subs = {s["username"]: s for s in body["subscriptions"]}
    assert set(subs) == {"hikaru", "magnuscarlsen"}
    assert subs["hikaru"]["filters"] == {
        "time_classes": ["bullet", "blitz", "rapid"],
        "rated_only": False,
    }
    assert subs["magnuscarlsen"]["filters"] == {
        "time_classes": ["blitz", "rapid"],
        "rated_only": True,
    }
    assert subs["hikaru"]["active"] and not subs["hikaru"]["paused"]


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Bearer ",
        "Bearer nonsense",
        "Basic Zm9vOmJhcg==",
    ],
)
async def test_missing_or_invalid_token_is_401(client: httpx.AsyncClient, auth: str | None) -> None:
    headers = {} if auth is None else {"Authorization": auth}
    for method, path in [
        ("GET", "/api/v1/me"),
        ("PATCH", "/api/v1/me"),
        ("DELETE", "/api/v1/me"),
        ("PATCH", "/api/v1/me/subscriptions/1"),
        ("DELETE", "/api/v1/me/subscriptions/1"),
    ]:
        r = await client.request(
            method, path, headers=headers, json={} if method == "PATCH" else None
        )
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"


async def test_tokens_of_other_purposes_expired_or_for_erased_rows_are_401(
    app: FastAPI,
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await subscribe(client, "fan@example.com", "hikaru")
    [sub_id] = await sub_ids(session_factory, "fan@example.com")
    unsubscribe = signer(app).sign(Purpose.unsubscribe, sub_id, "fan@example.com")
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {unsubscribe}"})
    assert r.status_code == 401
    # Signed for this subscription id but another address: refused.
    wrong = sign_manage_token(signer(app), sub_id, "other@example.com")
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401
    # Expired: signed an hour ago, with a one-minute lifetime.
    token = sign_manage_token(signer(app), sub_id, "fan@example.com")
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 3600
    )
    old = sign_manage_token(signer(app), sub_id, "fan@example.com")
    monkeypatch.undo()
    monkeypatch.setattr(app.state.settings, "manage_token_max_age_seconds", 60)
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    # Erasing the address kills its tokens.
    assert (
        await client.delete("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 204
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


async def test_patch_me_sets_time_zone_delivery_and_quiet_hours(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    auth = await fan_signed_in(app, client, session_factory, "hikaru")
    r = await client.patch(
        "/api/v1/me",
        headers=auth,
        json={
            "timezone": "Asia/Kolkata",
            "delivery": {
                "mode": "digest",
                "digest_hour": 7,
                "quiet_hours": {"start": "22:00", "end": "07:30"},
            },
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "Asia/Kolkata"
    assert r.json()["delivery"] == {
        "mode": "digest",
        "digest_hour": 7,
        "quiet_hours": {"start": "22:00", "end": "07:30"},
    }
    async with session_factory() as s:
        prefs = await s.get(SubscriberPreferences, "fan@example.com")
        assert prefs is not None and prefs.next_digest_at is not None
        # 07:00 in Kolkata is 01:30 UTC.
        assert (prefs.next_digest_at.hour, prefs.next_digest_at.minute) == (1, 30)
    # A partial patch keeps the rest; quiet_hours null switches them off.
    r = await client.patch("/api/v1/me", headers=auth, json={"delivery": {"quiet_hours": None}})
    assert r.json()["delivery"] == {"mode": "digest", "digest_hour": 7, "quiet_hours": None}
    r = await client.patch("/api/v1/me", headers=auth, json={"delivery": {"mode": "immediate"}})
    assert r.json()["delivery"]["mode"] == "immediate"
    assert r.json()["timezone"] == "Asia/Kolkata"
    async with session_factory() as s:
        prefs = await s.get(SubscriberPreferences, "fan@example.com")
        assert prefs is not None and prefs.next_digest_at is None


@pytest.mark.parametrize(
    "body",
    [
        {"timezone": "Mars/Olympus"},
        {"timezone": "../../etc/passwd"},
        {"timezone": ""},
        {"delivery": {"mode": "weekly"}},
        {"delivery": {"digest_hour": 24}},
        {"delivery": {"digest_hour": -1}},
        {"delivery": {"quiet_hours": {"start": "25:00", "end": "07:00"}}},
        {"delivery": {"quiet_hours": {"start": "07:00", "end": "07:00"}}},
        {"delivery": {"quiet_hours": {"start": "07:00"}}},
        {"email": "someone@else.com"},
    ],
)
async def test_bad_patches_are_422_and_change_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    body: dict[str, object],
) -> None:
    auth = await fan_signed_in(app, client, session_factory, "hikaru")
    r = await client.patch("/api/v1/me", headers=auth, json=body)
    assert r.status_code == 422, r.text
    async with session_factory() as s:
        assert await s.get(SubscriberPreferences, "fan@example.com") is None


async def test_a_chesscom_and_a_lichess_player_of_one_name_stay_apart(
    app: FastAPI,
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
    lichess: LichessSimulator,
) -> None:
    """SPEC §4, §5: a player is (platform, username); /me and the manage page name each
    subscription by its key, so two players of one name are never confused."""
    simulator.add_player("DrNykterstein")
    lichess.add_user("DrNykterstein")
    await subscribe(client, "fan@example.com", "drnykterstein")
    await subscribe(client, "fan@example.com", "lichess:DrNykterstein")
    auth = await bearer(app, session_factory, "fan@example.com")
    body = (await client.get("/api/v1/me", headers=auth)).json()
    listed = [(s["key"], s["platform"], s["username"]) for s in body["subscriptions"]]
    assert listed == [
        ("drnykterstein", "chesscom", "drnykterstein"),
        ("lichess:drnykterstein", "lichess", "drnykterstein"),
    ]
    token = auth["Authorization"].removeprefix("Bearer ")
    page = (await client.get("/manage", params={"token": token})).text
    assert ">lichess:drnykterstein" in page and "Pause drnykterstein<" in page
    ids = re.findall(r'id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "every id on the page is unique"


async def test_pause_filters_and_unsubscribe_one_subscription(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    auth = await fan_signed_in(app, client, session_factory, "hikaru", "magnuscarlsen")
    hikaru_id, magnus_id = await sub_ids(session_factory, "fan@example.com")
    r = await client.patch(
        f"/api/v1/me/subscriptions/{hikaru_id}", headers=auth, json={"paused": True}
    )
    assert r.status_code == 200, r.text
    r = await client.patch(
        f"/api/v1/me/subscriptions/{hikaru_id}",
        headers=auth,
        json={"filters": {"time_classes": ["rapid"]}},
    )
    subs = {s["id"]: s for s in r.json()["subscriptions"]}
    assert subs[hikaru_id]["paused"] is True
    assert subs[hikaru_id]["filters"] == {"time_classes": ["rapid"], "rated_only": False}
    assert subs[magnus_id]["filters"]["time_classes"] == ["bullet", "blitz", "rapid"]
    # Lichess's classical is a time class of its own (SPEC §10), stored and listed.
    r = await client.patch(
        f"/api/v1/me/subscriptions/{magnus_id}",
        headers=auth,
        json={"filters": {"time_classes": ["classical", "blitz"]}},
    )
    assert r.status_code == 200, r.text
    subs = {s["id"]: s for s in r.json()["subscriptions"]}
    assert subs[magnus_id]["filters"]["time_classes"] == ["blitz", "classical"]
    r = await client.patch(
        f"/api/v1/me/subscriptions/{magnus_id}",
        headers=auth,
        json={"filters": {"time_classes": ["bullet", "blitz", "rapid"]}},
    )
    assert r.status_code == 200, r.text
    for bad in (
        {"filters": {"time_classes": []}},
        {"filters": {"time_classes": ["daily"]}},
        {"filters": {"rated_only": "maybe"}},
        {"paused": "yes please"},
        {"active": True},
    ):
        r = await client.patch(f"/api/v1/me/subscriptions/{hikaru_id}", headers=auth, json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = await client.delete(f"/api/v1/me/subscriptions/{magnus_id}", headers=auth)
    assert r.status_code == 204
    r = await client.delete(f"/api/v1/me/subscriptions/{magnus_id}", headers=auth)
    assert r.status_code == 204  # idempotent
    subs = {
        s["id"]: s for s in (await client.get("/api/v1/me", headers=auth)).json()["subscriptions"]
    }
    assert subs[magnus_id]["active"] is False and subs[hikaru_id]["active"] is True


async def test_another_addresss_subscription_is_404_and_untouched(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, "fan@example.com", "hikaru")
    await subscribe(client, "victim@example.com", "hikaru")
    auth = await bearer(app, session_factory, "fan@example.com")
    [victim_id] = await sub_ids(session_factory, "victim@example.com")
    for method, body in [
        ("PATCH", {"paused": True}),
        ("PATCH", {"filters": {"rated_only": True}}),
        ("DELETE", None),
    ]:
        r = await client.request(
            method, f"/api/v1/me/subscriptions/{victim_id}", headers=auth, json=body
        )
        assert r.status_code == 404, r.text
    r = await client.patch("/api/v1/me/subscriptions/999999", headers=auth, json={"paused": True})
    assert r.status_code == 404
    async with session_factory() as s:
        victim = await s.get(EmailSubscription, victim_id)
        assert (
            victim is not None and victim.is_active and not victim.paused and not victim.rated_only
        )
    # Erasing my address leaves the victim's rows alone.
    assert (await client.delete("/api/v1/me", headers=auth)).status_code == 204
    assert await sub_ids(session_factory, "fan@example.com") == []
    assert await sub_ids(session_factory, "victim@example.com") == [victim_id]


async def test_delete_me_erases_every_row_about_the_address(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    auth = await fan_signed_in(app, client, session_factory, "hikaru")
    await client.patch("/api/v1/me", headers=auth, json={"timezone": "Europe/Berlin"})
    assert (
        await client.post("/api/v1/me/link", json={"email": "fan@example.com"})
    ).status_code == 202
    assert (await client.delete("/api/v1/me", headers=auth)).status_code == 204
    async with session_factory() as s:
        assert await s.get(SubscriberPreferences, "fan@example.com") is None
        assert await s.scalar(select(func.count(NotificationLog.id))) == 0
        assert await s.scalar(select(func.count(EmailSubscription.id))) == 0


async def test_me_link_is_202_always_and_mails_only_known_addresses(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, "fan@example.com", "hikaru")
    known = await client.post("/api/v1/me/link", json={"email": "Fan@Example.com"})
    unknown = await client.post("/api/v1/me/link", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    for _ in range(5):
        await client.post("/api/v1/me/link", json={"email": "fan@example.com"})
    async with session_factory() as s:
        sent = await s.scalar(
            select(func.count(NotificationLog.id)).where(
                NotificationLog.notification_type == "manage_link"
            )
        )
    assert sent == 3  # the per-address daily cap
    assert (await client.post("/api/v1/me/link", json={"email": "nope"})).status_code == 422


async def test_subscribe_with_filters_never_retunes_an_active_subscription(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, "fan@example.com", "hikaru", filters={"time_classes": ["bullet"]})
    await subscribe(
        client, "fan@example.com", "hikaru", filters={"time_classes": ["rapid"], "rated_only": True}
    )
    async with session_factory() as s:
        sub = await s.scalar(select(EmailSubscription))
        assert sub is not None and sub.time_classes == ["bullet"] and not sub.rated_only
    r = await client.post(
        "/api/v1/subscriptions",
        json={
            "email": "a@example.com",
            "username": "hikaru",
            "filters": {"time_classes": ["daily"]},
        },
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    "settings_overrides",
    [{"require_email_confirmation": False, "rate_limit_enabled": True}],
)
async def test_rate_limits_apply_per_client_and_per_manage_link(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, "fan@example.com", "hikaru")  # 1 of the client's 5
    codes = [
        (await client.post("/api/v1/me/link", json={"email": f"x{i}@example.com"})).status_code
        for i in range(5)
    ]
    assert codes == [202, 202, 202, 202, 429]
    # A manage link has a budget of its own (the authenticated rate), not the client's.
    auth = await bearer(app, session_factory, "fan@example.com")
    codes = [
        (await client.patch("/api/v1/me", headers=auth, json={})).status_code for _ in range(11)
    ]
    assert codes == [200] * 10 + [429]
    # Reads are not limited.
    assert (await client.get("/api/v1/me", headers=auth)).status_code == 200
