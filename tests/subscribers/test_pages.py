"""The site's pages over HTTP (issue 12): forms, CSRF, the two-step subscribe, /manage.

The same flows run in a real browser in tests/e2e/test_site.py; these pin the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, NotificationLog, Player, SubscriberPreferences
from app.subscriptions.me import sign_manage_token
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator

pytestmark = pytest.mark.usefixtures("clean_db")
Factory = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
def players(simulator: ChessComSimulator) -> None:
    simulator.add_player("Hikaru", name="Hikaru Nakamura", title="GM", player_id=15448422)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def form_page(client: httpx.AsyncClient, url: str = "/") -> str:
    r = await client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    return csrf_of(r.text)


async def count(factory: Factory, model: type, *where: object) -> int:
    async with factory() as s:
        return (await s.scalar(select(func.count()).select_from(model).where(*where))) or 0  # type: ignore[arg-type]


async def test_subscribe_in_two_steps_shows_the_player_before_storing_anything(
    client: httpx.AsyncClient, session_factory: Factory
) -> None:
    token = await form_page(client)
    r = await client.post(
        "/subscribe",
        data={
            "csrf_token": token,
            "step": "lookup",
            "username": "Hikaru",
            "email": "Fan@Example.com",
        },
    )
    assert r.status_code == 200, r.text
    assert "Hikaru Nakamura" in r.text and ">GM<" in r.text and "hikaru" in r.text
    assert "<img" not in r.text  # no external asset: the avatar is not loaded
    assert await count(session_factory, Player) == 0
    assert await count(session_factory, EmailSubscription) == 0
    r = await client.post(
        "/subscribe",
        data={
            "csrf_token": csrf_of(r.text),
            "step": "subscribe",
            "username": "hikaru",
            "email": "fan@example.com",
            "tc_blitz": "1",
            "tc_rapid": "1",
            "rated_only": "1",
        },
    )
    assert r.status_code == 200, r.text
    assert "Check your inbox" in r.text
    async with session_factory() as s:
        sub = await s.scalar(select(EmailSubscription))
        assert sub is not None and sub.email == "fan@example.com" and sub.confirmed_at is None
        assert sub.time_classes == ["blitz", "rapid"] and sub.rated_only
    assert (
        await count(
            session_factory, NotificationLog, NotificationLog.notification_type == "confirmation"
        )
        == 1
    )


async def test_the_home_form_takes_a_lichess_key(
    client: httpx.AsyncClient, session_factory: Factory, lichess: LichessSimulator
) -> None:
    lichess.add_user("DrNykterstein", title="GM")
    token = await form_page(client)
    data = {"csrf_token": token, "username": "lichess:DrNykterstein", "email": "fan@example.com"}
    r = await client.post("/subscribe", data={**data, "step": "lookup"})
    assert r.status_code == 200, r.text
    assert "lichess:drnykterstein" in r.text and ">GM<" in r.text
    assert "profile on Lichess" in r.text
    # Lichess's classical is offered, unticked (SPEC §4's default leaves it out).
    assert 'name="tc_classical" id="tc_classical" value="1" >' in r.text
    assert 'name="tc_blitz" id="tc_blitz" value="1" checked>' in r.text
    assert await count(session_factory, Player) == 0
    r = await client.post(
        "/subscribe",
        data={
            **data,
            "csrf_token": csrf_of(r.text),
            "step": "subscribe",
            "tc_blitz": "1",
            "tc_classical": "1",
        },
    )
    assert r.status_code == 200, r.text
    async with session_factory() as s:
        player = await s.scalar(select(Player))
        assert player is not None and player.key == "lichess:drnykterstein"
        sub = await s.scalar(select(EmailSubscription))
        assert sub is not None and sub.time_classes == ["blitz", "classical"]
    r = await client.post(
        "/subscribe",
        data={**data, "step": "lookup", "username": "lichess:nobody"},
    )
    assert r.status_code == 404 and "Lichess has no player" in r.text


@pytest.mark.parametrize(
    "data",
    [
        {"username": "x", "email": "fan@example.com"},
        {"username": "hikaru", "email": "not-an-address"},
        {"username": "nobody-here", "email": "fan@example.com"},
    ],
)
async def test_bad_input_re_renders_the_form_with_a_message(
    client: httpx.AsyncClient, session_factory: Factory, data: dict[str, str]
) -> None:
    token = await form_page(client)
    r = await client.post("/subscribe", data={"csrf_token": token, "step": "lookup", **data})
    assert r.status_code in (404, 422)
    assert 'aria-invalid="true"' in r.text and 'class="error"' in r.text
    assert await count(session_factory, Player) == 0


async def test_forms_without_a_matching_csrf_token_are_refused(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    body = {"step": "subscribe", "username": "hikaru", "email": "fan@example.com", "tc_blitz": "1"}
    # No cookie, no field.
    r = await client.post("/subscribe", data=body)
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    token = await form_page(client)
    # A field that is not the cookie's.
    r = await client.post("/subscribe", data={**body, "csrf_token": token[:-2] + "xx"})
    assert r.status_code == 403
    r = await client.post("/send-link", data={"email": "fan@example.com", "csrf_token": "abc"})
    assert r.status_code == 403
    assert await count(session_factory, EmailSubscription) == 0
    # The manage forms too.
    r = await client.post("/manage/unsubscribe-all?token=whatever", data={"csrf_token": token})
    assert r.status_code == 401  # the link is checked first: a bad link explains itself


async def subscribed(app: FastAPI, factory: Factory, email: str = "fan@example.com") -> str:
    """An active subscription to hikaru; returns its manage token."""
    async with factory() as s, s.begin():
        s.add(Player(player_id=15448422, username="hikaru", name="Hikaru Nakamura", title="GM"))
        await s.flush()
        sub = EmailSubscription(email=email, player_id=15448422, is_active=True)
        sub.confirmed_at = func.now()
        s.add(sub)
        await s.flush()
        sub_id = sub.id
    return sign_manage_token(app.state.signer, sub_id, email)


@dataclass(frozen=True)
class ManageForms:
    """The manage page's forms, posted with its link token and CSRF token."""

    client: httpx.AsyncClient
    token: str
    csrf: str
    manage_path: str = "/manage"

    async def post(self, path: str, **fields: str) -> httpx.Response:
        data = {"csrf_token": self.csrf, **fields}
        url = self.manage_path + path
        return await self.client.post(url, params={"token": self.token}, data=data)


async def test_manage_page_changes_filters_pause_preferences_and_erases(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    token = await subscribed(app, session_factory)
    r = await client.get("/manage", params={"token": token})
    assert r.status_code == 200, r.text
    assert "fan@example.com" in r.text and "hikaru" in r.text
    forms = ManageForms(client, token, csrf_of(r.text))
    async with session_factory() as s:
        sub_id = await s.scalar(select(EmailSubscription.id))
    r = await forms.post(f"/subscriptions/{sub_id}", action="filters", tc_rapid="1", rated_only="1")
    assert r.status_code == 303 and r.headers["location"].startswith("/manage?token=")
    r = await forms.post(f"/subscriptions/{sub_id}", action="pause")
    assert r.status_code == 303
    berlin_digest = {
        "timezone": "Europe/Berlin",
        "mode": "digest",
        "digest_hour": "19",
        "quiet_enabled": "1",
        "quiet_start": "23:00",
        "quiet_end": "06:30",
    }
    r = await forms.post("/preferences", **berlin_digest)
    assert r.status_code == 303
    r = await client.get(r.headers["location"])
    assert "Your delivery settings are saved." in r.text
    async with session_factory() as s:
        sub = await s.get(EmailSubscription, sub_id)
        prefs = await s.get(SubscriberPreferences, "fan@example.com")
    assert sub is not None and sub.paused and sub.time_classes == ["rapid"] and sub.rated_only
    assert prefs is not None and prefs.timezone == "Europe/Berlin"
    assert prefs.delivery_mode == "digest" and prefs.digest_hour == 19
    assert prefs.quiet_start is not None and prefs.quiet_start.isoformat() == "23:00:00"
    # A bad time zone is refused with a message and changes nothing.
    r = await forms.post("/preferences", timezone="Mars/Olympus", mode="immediate", digest_hour="3")
    assert r.status_code == 422 and "Unknown time zone" in r.text
    # Erasing needs the box ticked.
    r = await forms.post("/erase")
    assert r.status_code == 422
    assert await count(session_factory, EmailSubscription) == 1
    r = await forms.post("/erase", confirm="1")
    assert r.status_code == 200 and "deleted" in r.text
    assert await count(session_factory, EmailSubscription) == 0
    assert await count(session_factory, SubscriberPreferences) == 0
    r = await client.get("/manage", params={"token": token})
    assert r.status_code == 401 and "fresh link" in r.text


async def test_a_manage_token_cannot_touch_another_addresss_subscription(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    token = await subscribed(app, session_factory)
    async with session_factory() as s, s.begin():
        victim = EmailSubscription(email="victim@example.com", player_id=15448422, is_active=True)
        s.add(victim)
        await s.flush()
        victim_id = victim.id
    await forms_refuse_another_subscription(client, "/manage", token, victim_id)
    async with session_factory() as s:
        row = await s.get(EmailSubscription, victim_id)
        assert row is not None and row.is_active and not row.paused
        assert row.time_classes == ["bullet", "blitz", "rapid"]


async def forms_refuse_another_subscription(
    client: httpx.AsyncClient, manage_path: str, token: str, sub_id: int
) -> None:
    """Every subscription form of a manage page, aimed at a subscription the token does
    not own, is 404."""
    page = await client.get(manage_path, params={"token": token})
    forms = ManageForms(client, token, csrf_of(page.text), manage_path)
    for action in ("pause", "unsubscribe", "filters"):
        r = await forms.post(f"/subscriptions/{sub_id}", action=action, tc_bullet="1")
        assert r.status_code == 404, (action, r.text)


async def test_send_link_answers_the_same_for_any_address(
    client: httpx.AsyncClient, app: FastAPI, session_factory: Factory
) -> None:
    await subscribed(app, session_factory)
    csrf = await form_page(client)
    known = await client.post("/send-link", data={"csrf_token": csrf, "email": "fan@example.com"})
    unknown = await client.post("/send-link", data={"csrf_token": csrf, "email": "who@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(csrf, "") == unknown.text.replace(csrf, "")
    assert (
        await count(
            session_factory, NotificationLog, NotificationLog.notification_type == "manage_link"
        )
        == 1
    )


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_enabled": True}])
async def test_the_api_rate_limits_apply_to_the_forms(client: httpx.AsyncClient) -> None:
    csrf = await form_page(client)
    answers = [
        await client.post("/send-link", data={"csrf_token": csrf, "email": f"a{i}@example.com"})
        for i in range(6)
    ]
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    limited = answers[-1]
    assert limited.headers["retry-after"] and "text/html" in limited.headers["content-type"]
    assert "Please wait a moment" in limited.text


async def test_one_click_unsubscribe_from_everything(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory
) -> None:
    """The digest's List-Unsubscribe (RFC 8058): no page, no cookie, the link is the proof."""
    token = await subscribed(app, session_factory)
    r = await client.post(
        "/manage/unsubscribe-all",
        params={"token": token},
        data={"List-Unsubscribe": "One-Click"},
    )
    assert r.status_code == 200
    async with session_factory() as s:
        sub = await s.scalar(select(EmailSubscription))
        assert sub is not None and not sub.is_active
    # Without the one-click body it is a page's form, which needs its CSRF token.
    r = await client.post("/manage/unsubscribe-all", params={"token": token}, data={})
    assert r.status_code == 403
