"""Consent, anti-abuse, signed links and erasure (issue 4 §3, §4; SPEC §4).

Tried as a hostile user would: mail-bombing an address, probing whether it is
subscribed, and expired, tampered and borrowed tokens. Then the "forget me" flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from itsdangerous import TimestampSigner
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, NotificationLog, Player
from app.tokens import Purpose, TokenSigner
from tests.fakes.chesscom import ChessComSimulator

pytestmark = pytest.mark.usefixtures("clean_db")

JSON = {"Accept": "application/json"}
PLAYERS = ("hikaru", "magnus", "fabianocaruana", "anishgiri", "lachesisq")
LINKS = {
    Purpose.confirm: "/api/v1/subscriptions/confirm",
    Purpose.unsubscribe: "/api/v1/unsubscribe",
    Purpose.erase: "/api/v1/subscribers/erase",
}
Factory = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
def players(simulator: ChessComSimulator) -> None:
    for name in PLAYERS:
        simulator.add_player(name)


def signer(app: FastAPI) -> TokenSigner:
    s: TokenSigner = app.state.signer
    return s


async def subscribe(client: httpx.AsyncClient, email: str, username: str) -> httpx.Response:
    return await client.post("/api/v1/subscriptions", json={"email": email, "username": username})


async def fan_subscribes(client: httpx.AsyncClient, factory: Factory) -> EmailSubscription:
    """fan@example.com subscribes to hikaru (not confirmed yet)."""
    await subscribe(client, "fan@example.com", "hikaru")
    return await one_sub(factory, "fan@example.com")


async def fan_confirm_token(app: FastAPI, client: httpx.AsyncClient, factory: Factory) -> str:
    """fan@example.com subscribes to hikaru; the token of the confirmation link it gets."""
    sub = await fan_subscribes(client, factory)
    return signer(app).sign(Purpose.confirm, sub.id, sub.email)


async def subs_of(factory: Factory, email: str) -> list[EmailSubscription]:
    async with factory() as s:
        rows = await s.scalars(
            select(EmailSubscription)
            .where(EmailSubscription.email == email)
            .order_by(EmailSubscription.id)
        )
        return list(rows.all())


async def one_sub(factory: Factory, email: str, username: str = "hikaru") -> EmailSubscription:
    async with factory() as s:
        row = await s.scalar(
            select(EmailSubscription)
            .join(Player, Player.player_id == EmailSubscription.player_id)
            .where(EmailSubscription.email == email, Player.username == username)
        )
    assert row is not None
    return row


async def mails(factory: Factory, kind: str, email: str | None = None) -> int:
    stmt = (
        select(func.count(NotificationLog.id))
        .join(EmailSubscription, EmailSubscription.id == NotificationLog.subscription_id)
        .where(NotificationLog.notification_type == kind)
    )
    if email is not None:
        stmt = stmt.where(EmailSubscription.email == email)
    async with factory() as s:
        return await s.scalar(stmt) or 0


def answer(r: httpx.Response) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    """Everything a client can observe of a response."""
    return r.status_code, r.content, tuple(sorted(r.headers.items()))


@contextmanager
def signed_in_the_past(age: timedelta) -> Iterator[None]:
    """Tokens signed inside this block carry a timestamp `age` ago."""
    original = TimestampSigner.get_timestamp
    stamp = int((datetime.now(UTC) - age).timestamp())
    TimestampSigner.get_timestamp = lambda self: stamp  # type: ignore[method-assign]
    try:
        yield
    finally:
        TimestampSigner.get_timestamp = original  # type: ignore[method-assign]


def tamper(token: str, where: str) -> str:
    """Flip one character in the payload or in the middle of the signature."""
    payload, _, signature = token.rpartition(".")
    if where == "payload":
        i = len(payload) // 2
        return (
            payload[:i] + ("A" if payload[i] != "A" else "B") + payload[i + 1 :] + "." + signature
        )
    i = len(signature) // 2
    flipped = signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1 :]
    return payload + "." + flipped


# -- anti-abuse ---------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"confirmation_resend_cooldown_seconds": 0}])
async def test_an_address_gets_at_most_three_confirmation_mails_a_day(
    client: httpx.AsyncClient, session_factory: Factory
) -> None:
    answers = {answer(await subscribe(client, "victim@example.com", p)) for p in PLAYERS}
    assert len(answers) == 1 and next(iter(answers))[0] == 202
    assert len(await subs_of(session_factory, "victim@example.com")) == 5
    assert await mails(session_factory, "confirmation", "victim@example.com") == 3
    # Repeating the same pairs (no cooldown here) cannot exceed the cap either.
    for p in PLAYERS:
        assert (await subscribe(client, "victim@example.com", p)).status_code == 202
    assert await mails(session_factory, "confirmation", "victim@example.com") == 3
    # The cap is per address: another address is unaffected.
    await subscribe(client, "other@example.com", "hikaru")
    assert await mails(session_factory, "confirmation", "other@example.com") == 1


@pytest.mark.parametrize("settings_overrides", [{"confirmation_resend_cooldown_seconds": 0}])
async def test_the_cap_holds_for_a_concurrent_burst(
    client: httpx.AsyncClient, session_factory: Factory
) -> None:
    await asyncio.gather(*(subscribe(client, "victim@example.com", p) for p in PLAYERS))
    await asyncio.gather(*(subscribe(client, "victim@example.com", p) for p in PLAYERS))
    assert await mails(session_factory, "confirmation", "victim@example.com") <= 3


async def test_resending_to_the_same_pair_waits_for_the_cooldown(
    client: httpx.AsyncClient, session_factory: Factory
) -> None:
    for _ in range(3):
        assert (await subscribe(client, "fan@example.com", "hikaru")).status_code == 202
    assert await mails(session_factory, "confirmation", "fan@example.com") == 1


async def test_the_answer_never_reveals_whether_an_address_is_subscribed(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    new = answer(await subscribe(client, "known@example.com", "hikaru"))
    pending = answer(await subscribe(client, "known@example.com", "hikaru"))
    sub = await one_sub(session_factory, "known@example.com")
    token = signer(app).sign(Purpose.confirm, sub.id, sub.email)
    assert (await client.post(LINKS[Purpose.confirm], params={"token": token})).status_code == 200
    confirmed = answer(await subscribe(client, "Known@Example.com", "hikaru"))
    stranger = answer(await subscribe(client, "stranger@example.com", "hikaru"))
    assert new == pending == confirmed == stranger
    assert new[0] == 202 and new[1] == b'{"status":"pending_confirmation"}'
    # Confirmed subscribers get no new confirmation mail from a repeat.
    assert await mails(session_factory, "confirmation", "known@example.com") == 1


# -- consent --------------------------------------------------------------------------


async def test_the_confirming_post_records_proof_of_consent(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    token = await fan_confirm_token(app, client, session_factory)
    browser = {"User-Agent": "Mozilla/5.0 (consent test)"}

    page = await client.get(LINKS[Purpose.confirm], params={"token": token}, headers=browser)
    assert page.status_code == 200
    before = await one_sub(session_factory, "fan@example.com")
    assert (before.confirmed_at, before.consent_ip, before.consent_user_agent) == (None,) * 3

    started = datetime.now(UTC)
    r = await client.post(LINKS[Purpose.confirm], params={"token": token}, headers=browser)
    assert r.status_code == 200
    after = await one_sub(session_factory, "fan@example.com")
    assert after.confirmed_at is not None
    assert started - timedelta(seconds=5) <= after.confirmed_at <= datetime.now(UTC)
    assert after.consent_ip == "203.0.113.7"
    assert after.consent_user_agent == "Mozilla/5.0 (consent test)"
    # A replayed POST from elsewhere does not overwrite the proof.
    await client.post(
        LINKS[Purpose.confirm], params={"token": token}, headers={"User-Agent": "replayer"}
    )
    again = await one_sub(session_factory, "fan@example.com")
    assert (again.confirmed_at, again.consent_user_agent) == (
        after.confirmed_at,
        after.consent_user_agent,
    )


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": ["203.0.113.0/24"]}])
async def test_consent_ip_behind_a_trusted_proxy_is_the_forwarded_client(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    token = await fan_confirm_token(app, client, session_factory)
    await client.post(
        LINKS[Purpose.confirm],
        params={"token": token},
        headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.9"},
    )
    assert (await one_sub(session_factory, "fan@example.com")).consent_ip == "198.51.100.9"


async def test_link_pages_never_change_state(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    await subscribe(client, "pending@example.com", "hikaru")
    await subscribe(client, "active@example.com", "hikaru")
    pending = await one_sub(session_factory, "pending@example.com")
    active = await one_sub(session_factory, "active@example.com")
    s = signer(app)
    await client.post(
        LINKS[Purpose.confirm], params={"token": s.sign(Purpose.confirm, active.id, active.email)}
    )
    snapshot = [
        (r.id, r.is_active, r.confirmed_at, r.updated_at)
        for r in await subs_of(session_factory, "pending@example.com")
        + await subs_of(session_factory, "active@example.com")
    ]

    # What a mail scanner does: follow every link, several times, like a browser and not.
    for _ in range(3):
        for headers in ({}, JSON, {"Accept": "text/html"}):
            for purpose, sub in (
                (Purpose.confirm, pending),
                (Purpose.unsubscribe, active),
                (Purpose.erase, active),
            ):
                token = s.sign(purpose, sub.id, sub.email)
                r = await client.get(LINKS[purpose], params={"token": token}, headers=headers)
                assert r.status_code == 200
                assert "text/html" in r.headers["content-type"]
                assert '<form method="post"' in r.text

    assert snapshot == [
        (r.id, r.is_active, r.confirmed_at, r.updated_at)
        for r in await subs_of(session_factory, "pending@example.com")
        + await subs_of(session_factory, "active@example.com")
    ]


# -- hostile tokens ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "age"),
    [
        (Purpose.confirm, timedelta(days=8)),
        (Purpose.unsubscribe, timedelta(days=366)),
        (Purpose.erase, timedelta(days=8)),
    ],
)
async def test_expired_tokens_get_a_clear_400_page_and_change_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    session_factory: Factory,
    purpose: Purpose,
    age: timedelta,
) -> None:
    sub = await fan_subscribes(client, session_factory)
    if purpose is Purpose.unsubscribe:
        confirm = signer(app).sign(Purpose.confirm, sub.id, sub.email)
        await client.post(LINKS[Purpose.confirm], params={"token": confirm})
    with signed_in_the_past(age):
        token = signer(app).sign(purpose, sub.id, sub.email)
    before = await one_sub(session_factory, "fan@example.com")

    for method in ("GET", "POST"):
        r = await client.request(method, LINKS[purpose], params={"token": token})
        assert r.status_code == 400, method
        assert "text/html" in r.headers["content-type"]
        assert "expired" in r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    api = await client.post(LINKS[purpose], params={"token": token}, headers=JSON)
    assert api.status_code == 400 and "expired" in api.json()["detail"]

    after = await one_sub(session_factory, "fan@example.com")
    assert (after.is_active, after.confirmed_at) == (before.is_active, before.confirmed_at)
    # The same link signed recently would have worked: it is the age that failed it.
    with signed_in_the_past(age - timedelta(days=2)):
        fresh = signer(app).sign(purpose, sub.id, sub.email)
    assert (await client.get(LINKS[purpose], params={"token": fresh})).status_code == 200


@pytest.mark.parametrize("where", ["payload", "signature"])
@pytest.mark.parametrize("purpose", list(LINKS))
async def test_tampered_tokens_are_refused(
    app: FastAPI,
    client: httpx.AsyncClient,
    session_factory: Factory,
    purpose: Purpose,
    where: str,
) -> None:
    sub = await fan_subscribes(client, session_factory)
    token = signer(app).sign(purpose, sub.id, sub.email)
    bad = tamper(token, where)
    assert bad != token
    for method in ("GET", "POST"):
        r = await client.request(method, LINKS[purpose], params={"token": bad})
        assert r.status_code == 400 and "text/html" in r.headers["content-type"], method
    assert (await client.post(LINKS[purpose], params={"token": bad}, headers=JSON)).json() == {
        "detail": "This link is invalid or has expired"
    }
    assert len(await subs_of(session_factory, "fan@example.com")) == 1
    assert (await one_sub(session_factory, "fan@example.com")).confirmed_at is None


async def test_a_token_acts_only_on_its_own_subscription(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    s = signer(app)
    await subscribe(client, "alice@example.com", "hikaru")
    await subscribe(client, "alice@example.com", "magnus")
    await subscribe(client, "bob@example.com", "hikaru")
    a1 = await one_sub(session_factory, "alice@example.com", "hikaru")
    a2 = await one_sub(session_factory, "alice@example.com", "magnus")
    b = await one_sub(session_factory, "bob@example.com", "hikaru")

    # Mixing one subscription's id with another's address: refused.
    for forged in (
        s.sign(Purpose.confirm, a1.id, b.email),
        s.sign(Purpose.confirm, b.id, a1.email),
        s.sign(Purpose.confirm, str(b.id), b.email),
        s.sign(Purpose.confirm, b.email, b.email),
    ):
        r = await client.post(LINKS[Purpose.confirm], params={"token": forged}, headers=JSON)
        assert r.status_code == 400
    # A token for one purpose never serves another.
    for purpose in Purpose:
        for other in LINKS:
            if other is not purpose:
                token = s.sign(purpose, b.id, b.email)
                r = await client.post(LINKS[other], params={"token": token}, headers=JSON)
                assert r.status_code == 400, (purpose, other)
    assert all(
        sub.confirmed_at is None for sub in await subs_of(session_factory, "bob@example.com")
    )

    # Alice's hikaru links act on that subscription alone, not on her other one.
    await client.post(
        LINKS[Purpose.confirm], params={"token": s.sign(Purpose.confirm, a1.id, a1.email)}
    )
    await client.post(
        LINKS[Purpose.confirm], params={"token": s.sign(Purpose.confirm, a2.id, a2.email)}
    )
    await client.post(
        LINKS[Purpose.unsubscribe], params={"token": s.sign(Purpose.unsubscribe, a1.id, a1.email)}
    )
    after = {sub.id: sub for sub in await subs_of(session_factory, "alice@example.com")}
    assert not after[a1.id].is_active
    assert after[a2.id].is_active and after[a2.id].confirmed_at is not None
    assert (await one_sub(session_factory, "bob@example.com")).confirmed_at is None


async def test_links_of_an_erased_subscription_die_with_it(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory, admin: dict[str, str]
) -> None:
    await subscribe(client, "fan@example.com", "hikaru")
    old = await one_sub(session_factory, "fan@example.com")
    s = signer(app)
    confirm = s.sign(Purpose.confirm, old.id, old.email)
    assert (
        await client.delete("/api/v1/subscribers/fan@example.com", headers=admin)
    ).status_code == 204
    await subscribe(client, "fan@example.com", "hikaru")
    # The old link does not confirm the new subscription: consent is given afresh.
    r = await client.post(LINKS[Purpose.confirm], params={"token": confirm}, headers=JSON)
    assert r.status_code == 400
    assert (await one_sub(session_factory, "fan@example.com")).confirmed_at is None


# -- erasure --------------------------------------------------------------------------


async def test_erase_request_answers_the_same_for_known_and_unknown_addresses(
    client: httpx.AsyncClient, session_factory: Factory
) -> None:
    await subscribe(client, "known@example.com", "hikaru")
    known = await client.post(
        "/api/v1/subscribers/erase-request", json={"email": "known@example.com"}
    )
    unknown = await client.post(
        "/api/v1/subscribers/erase-request", json={"email": "unknown@example.com"}
    )
    assert known.status_code == unknown.status_code == 202
    assert answer(known) == answer(unknown)
    assert "known@example.com" not in known.text
    assert await mails(session_factory, "erase_request", "known@example.com") == 1
    assert await mails(session_factory, "erase_request") == 1
    assert await subs_of(session_factory, "unknown@example.com") == []

    # Capped per address and day, still with the same answer.
    for _ in range(5):
        r = await client.post(
            "/api/v1/subscribers/erase-request", json={"email": "KNOWN@example.com"}
        )
        assert answer(r) == answer(unknown)
    assert await mails(session_factory, "erase_request", "known@example.com") == 3


async def test_following_the_erase_link_deletes_every_row_about_the_address(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    for p in ("hikaru", "magnus"):
        await subscribe(client, "gone@example.com", p)
    await subscribe(client, "stay@example.com", "hikaru")
    await client.post("/api/v1/subscribers/erase-request", json={"email": "gone@example.com"})
    gone = await subs_of(session_factory, "gone@example.com")
    assert len(gone) == 2 and await mails(session_factory, "erase_request", "gone@example.com") == 1
    stay_before = await mails(session_factory, "confirmation", "stay@example.com")
    token = signer(app).sign(Purpose.erase, gone[0].id, "gone@example.com")

    page = await client.get(LINKS[Purpose.erase], params={"token": token})
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert len(await subs_of(session_factory, "gone@example.com")) == 2

    r = await client.post(LINKS[Purpose.erase], params={"token": token})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert await subs_of(session_factory, "gone@example.com") == []
    async with session_factory() as s:
        orphans = await s.scalar(
            select(func.count(NotificationLog.id)).where(
                NotificationLog.subscription_id.in_([g.id for g in gone])
            )
        )
    assert orphans == 0
    # Someone else's rows are untouched.
    assert len(await subs_of(session_factory, "stay@example.com")) == 1
    assert await mails(session_factory, "confirmation", "stay@example.com") == stay_before == 1

    # Repeating it is harmless, for browsers and API clients alike.
    again = await client.post(LINKS[Purpose.erase], params={"token": token})
    assert again.status_code == 200
    api = await client.post(LINKS[Purpose.erase], params={"token": token}, headers=JSON)
    assert api.status_code == 200 and api.json()["status"] == "accepted"
    assert len(await subs_of(session_factory, "stay@example.com")) == 1


async def test_admin_can_erase_an_address_directly(
    client: httpx.AsyncClient, session_factory: Factory, admin: dict[str, str]
) -> None:
    for p in ("hikaru", "magnus"):
        await subscribe(client, "gone@example.com", p)
    await subscribe(client, "stay@example.com", "hikaru")
    assert (await client.delete("/api/v1/subscribers/gone@example.com")).status_code == 401
    assert len(await subs_of(session_factory, "gone@example.com")) == 2

    r = await client.delete("/api/v1/subscribers/Gone@Example.com", headers=admin)
    assert r.status_code == 204 and r.content == b""
    assert await subs_of(session_factory, "gone@example.com") == []
    assert await mails(session_factory, "confirmation", "gone@example.com") == 0
    assert len(await subs_of(session_factory, "stay@example.com")) == 1
    # Idempotent: a repeat changes nothing, and tells the admin (who may list addresses
    # anyway) that nothing is stored about it any more. Anonymous callers learn nothing.
    again = await client.delete("/api/v1/subscribers/gone@example.com", headers=admin)
    assert again.status_code == 404
    assert len(await subs_of(session_factory, "stay@example.com")) == 1
    anonymous = await client.delete("/api/v1/subscribers/stay@example.com")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("purpose", list(LINKS))
async def test_a_link_cut_short_gets_a_page_for_browsers_and_json_for_clients(
    client: httpx.AsyncClient, purpose: Purpose
) -> None:
    for method in ("GET", "POST"):
        r = await client.request(method, LINKS[purpose])
        assert r.status_code == 422, method
        assert "text/html" in r.headers["content-type"]
        assert "This link is incomplete" in r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    api = await client.post(LINKS[purpose], headers=JSON)
    assert api.status_code == 422
    assert api.json()["detail"][0]["loc"] == ["query", "token"]
