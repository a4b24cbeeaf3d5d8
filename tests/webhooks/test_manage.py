"""Managing a webhook after subscribing (issue 13 item 1: "the same filters and pause as
email subscriptions"): the manage link in every message, its page and its API, and the
worker obeying what was changed. Real PostgreSQL, real loopback receivers."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from app.config import Settings
from app.models import EmailSubscription
from app.subscriptions.me import sign_manage_token
from app.subscriptions.webhook_manage import sign_webhook_manage_token
from app.tokens import Purpose, TokenSigner
from tests.fakes.webhooks import serve_receiver
from tests.subscribers.test_pages import csrf_of, forms_refuse_another_subscription
from tests.webhooks.test_delivery import (  # noqa: F401  (fixtures)
    CONFIRM_TOKEN,
    FLAVOUR,
    add_webhook,
    baseline,
    hook_settings,
    settings_overrides,
    subscribe_through_api,
)
from tests.worker.conftest import HOUR, NOW, WorkerFactory, World

pytestmark = pytest.mark.usefixtures("clean_db")

MANAGE_LINK = re.compile(r"http://testserver/manage/webhook\?token=([A-Za-z0-9_.%-]+)")


def manage_token(body: bytes) -> str:
    found = MANAGE_LINK.search(body.decode())
    assert found is not None, body
    return unquote(found.group(1))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signer(app: FastAPI) -> TokenSigner:
    s: TokenSigner = app.state.signer
    return s


@dataclass
class Hooks:
    """The API client, the world and the worker; sessions of hikaru, each more than the
    session gap after the previous one."""

    client: httpx.AsyncClient
    app: FastAPI
    world: World
    make_worker: WorkerFactory
    settings: Settings
    end: int = NOW - 5 * HOUR  # the baseline game's end

    async def start(self, url: str, fmt: str) -> EmailSubscription:
        """hikaru tracked (baseline polled) and an active webhook subscription to him."""
        await baseline(self.world, self.make_worker, self.settings)
        return await add_webhook(self.world, url, fmt)

    async def hook(self, url: str = "http://127.0.0.1:9/in") -> tuple[EmailSubscription, str]:
        """hikaru tracked (not polled) and a discord webhook following him; its token."""
        await self.world.track("hikaru")
        sub = await add_webhook(self.world, url, "discord")
        return sub, self.token(sub)

    def token(self, sub: EmailSubscription) -> str:
        assert sub.webhook_url is not None
        return sign_webhook_manage_token(signer(self.app), sub.id, sub.webhook_url)

    async def play(self, time_class: str = "blitz", *, rated: bool = True) -> None:
        self.end += 2400  # 5-minute games, more than LIVE_SESSION_GAP_SECONDS apart
        assert self.end < NOW
        self.world.sim.add_game(
            "hikaru",
            end_time=self.end,
            start_time=self.end - 300,
            time_class=time_class,
            rated=rated,
        )
        await self.world.make_due()
        await self.make_worker(self.settings).run_once()


@pytest.fixture
def hooks(
    client: httpx.AsyncClient,
    app: FastAPI,
    world: World,
    make_worker: WorkerFactory,
    hook_settings: Settings,  # noqa: F811
) -> Hooks:
    return Hooks(client, app, world, make_worker, hook_settings)


@pytest.mark.parametrize("fmt", ["discord", "slack", "json"])
async def test_every_message_of_each_format_carries_a_manage_link_that_opens_its_webhook(
    fmt: str, hooks: Hooks
) -> None:
    client, world = hooks.client, hooks.world
    world.sim.add_player("hikaru", name="Hikaru Nakamura")
    world.sim.add_game("hikaru", end_time=NOW - 5 * HOUR)
    with serve_receiver(FLAVOUR[fmt]) as receiver:
        secret, verification = await subscribe_through_api(
            client, receiver, f"/hooks/{fmt}/S3CRET-PATH", fmt, hooks.make_worker(hooks.settings)
        )
        token = manage_token(verification.body)
        if secret:
            event = Webhook(secret).verify(verification.body, verification.headers)
            assert event["data"]["links"]["manage"].endswith(
                verification.body.decode().split("/manage/webhook", 1)[1].split('"', 1)[0]
            )
        # The verification message's link works before confirming (filters can be set
        # first); the page never shows the URL's path (a Discord/Slack credential).
        page = await client.get("/manage/webhook", params={"token": token})
        assert page.status_code == 200, page.text
        assert "hikaru" in page.text and "awaiting confirmation" in page.text
        assert "S3CRET-PATH" not in page.text
        me = await client.get("/api/v1/webhooks/me", headers=bearer(token))
        assert me.status_code == 200, me.text
        assert me.json()["webhook"] == "http://127.0.0.1/…"
        assert "S3CRET-PATH" not in me.text
        (sub,) = me.json()["subscriptions"]
        assert (sub["username"], sub["format"], sub["confirmed"]) == ("hikaru", fmt, False)

        confirm = CONFIRM_TOKEN.search(verification.body.decode())
        assert confirm is not None
        confirmed = await client.post(
            f"/api/v1/subscriptions/confirm?token={confirm.group(1)}",
            headers={"accept": "application/json"},
        )
        assert confirmed.status_code == 200
        await hooks.play()
        live = receiver.requests[-1]
        assert len(receiver.requests) == 2
        if secret:
            event = Webhook(secret).verify(live.body, live.headers)
            assert event["type"] == "live_match.started"
            assert "/manage/webhook?token=" in event["data"]["links"]["manage"]
        live_token = manage_token(live.body)
        me = await client.get("/api/v1/webhooks/me", headers=bearer(live_token))
        assert me.status_code == 200 and me.json()["subscriptions"][0]["confirmed"] is True


async def test_pause_resume_and_filters_through_the_page_are_obeyed_by_later_sessions(
    hooks: Hooks,
) -> None:
    client, world = hooks.client, hooks.world
    with serve_receiver("discord") as receiver:
        sub = await hooks.start(receiver.url("/api/webhooks/1/abc"), "discord")
        await hooks.play("blitz")
        assert len(receiver.requests) == 1
        token = manage_token(receiver.requests[0].body)

        page = await client.get("/manage/webhook", params={"token": token})
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        form = f"/manage/webhook/subscriptions/{sub.id}"

        # Pause: a session brings nothing, and the outbox holds no row for it.
        r = await client.post(
            form, params={"token": token}, data={"csrf_token": csrf, "action": "pause"}
        )
        assert r.status_code == 303
        assert r.headers["location"].startswith("/manage/webhook?token=")
        shown = await client.get(r.headers["location"])
        assert "Paused" in shown.text and f'id="sub-{sub.id}-resume"' in shown.text
        await hooks.play("blitz")
        assert len(receiver.requests) == 1, "a paused webhook was posted to"
        assert len(await world.logs()) == 1

        # Resume: the next session is posted.
        r = await client.post(
            form, params={"token": token}, data={"csrf_token": csrf, "action": "resume"}
        )
        assert r.status_code == 303
        await hooks.play("blitz")
        assert len(receiver.requests) == 2

        # Filters: rapid only, rated only. Blitz and casual rapid bring nothing.
        r = await client.post(
            form,
            params={"token": token},
            data={"csrf_token": csrf, "action": "filters", "tc_rapid": "1", "rated_only": "1"},
        )
        assert r.status_code == 303
        async with world.factory() as s:
            row = await s.get(EmailSubscription, sub.id)
            assert row is not None and row.time_classes == ["rapid"] and row.rated_only
        await hooks.play("blitz")
        await hooks.play("rapid", rated=False)
        assert len(receiver.requests) == 2, "a filtered-out session was posted"
        await hooks.play("rapid")
        assert len(receiver.requests) == 3
        assert "rapid" in receiver.requests[-1].body.decode().lower()

        # No kind of game at all is refused, not saved.
        r = await client.post(
            form, params={"token": token}, data={"csrf_token": csrf, "action": "filters"}
        )
        assert r.status_code == 422 and "choose at least one kind of game" in r.text

        # Unsubscribe from the page: nothing more, and the page says so.
        r = await client.post(
            form, params={"token": token}, data={"csrf_token": csrf, "action": "unsubscribe"}
        )
        assert r.status_code == 303
        assert "unsubscribed" in (await client.get(r.headers["location"])).text
        await hooks.play("rapid")
        assert len(receiver.requests) == 3


async def test_the_api_pauses_refilters_and_unsubscribes_and_the_worker_obeys(
    hooks: Hooks,
) -> None:
    client = hooks.client
    with serve_receiver() as receiver:
        sub = await hooks.start(receiver.url("/in"), "json")
        token = hooks.token(sub)
        path = f"/api/v1/webhooks/me/subscriptions/{sub.id}"

        r = await client.patch(
            path, headers=bearer(token), json={"filters": {"time_classes": ["blitz"]}}
        )
        assert r.status_code == 200, r.text
        assert r.json()["subscriptions"][0]["filters"] == {
            "time_classes": ["blitz"],
            "rated_only": False,
        }
        await hooks.play("rapid")
        assert receiver.requests == [], "a blitz-only webhook got a rapid session"
        await hooks.play("blitz")
        assert len(receiver.requests) == 1

        r = await client.patch(path, headers=bearer(token), json={"paused": True})
        assert r.status_code == 200 and r.json()["subscriptions"][0]["paused"] is True
        await hooks.play("blitz")
        assert len(receiver.requests) == 1, "a paused webhook was posted to"
        r = await client.patch(path, headers=bearer(token), json={"paused": False})
        assert r.status_code == 200
        await hooks.play("blitz")
        assert len(receiver.requests) == 2

        bad = await client.patch(
            path, headers=bearer(token), json={"filters": {"time_classes": []}}
        )
        assert bad.status_code == 422

        r = await client.delete(path, headers=bearer(token))
        assert r.status_code == 204
        await hooks.play("blitz")
        assert len(receiver.requests) == 2
        me = (await client.get("/api/v1/webhooks/me", headers=bearer(token))).json()
        assert me["subscriptions"][0]["active"] is False


async def test_a_token_opens_its_own_webhook_only(
    client: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    """Two webhooks (one following two players) and an address: each token touches its
    own rows only; anything else is 404, and the rows stay as they were."""
    await world.track("hikaru")
    await world.track("magnus")
    mine = await add_webhook(world, "http://127.0.0.1:9/mine", "slack")
    also_mine = await add_webhook(world, "http://127.0.0.1:9/mine", "slack", username="magnus")
    theirs = await add_webhook(world, "http://127.0.0.1:9/theirs", "discord")
    token = sign_webhook_manage_token(signer(app), mine.id, "http://127.0.0.1:9/mine")

    me = (await client.get("/api/v1/webhooks/me", headers=bearer(token))).json()
    assert sorted(s["id"] for s in me["subscriptions"]) == sorted([mine.id, also_mine.id])
    r = await client.patch(
        f"/api/v1/webhooks/me/subscriptions/{also_mine.id}",
        headers=bearer(token),
        json={"paused": True},
    )
    assert r.status_code == 200
    for method, body in (("PATCH", {"paused": True}), ("DELETE", None)):
        r = await client.request(
            method,
            f"/api/v1/webhooks/me/subscriptions/{theirs.id}",
            headers=bearer(token),
            json=body,
        )
        assert r.status_code == 404, (method, r.text)
    await forms_refuse_another_subscription(client, "/manage/webhook", token, theirs.id)
    async with world.factory() as s:
        row = await s.get(EmailSubscription, theirs.id)
        assert row is not None and row.is_active and not row.paused
        assert row.time_classes == ["bullet", "blitz", "rapid"]
        assert await s.scalar(select(func.count()).select_from(EmailSubscription)) == 3


async def test_forged_foreign_or_missing_tokens_are_401_page_and_json(hooks: Hooks) -> None:
    client, app, world = hooks.client, hooks.app, hooks.world
    hook, real = await hooks.hook()
    async with world.factory() as s, s.begin():
        fan = EmailSubscription(email="fan@example.com", player_id=hook.player_id, is_active=True)
        s.add(fan)
        await s.flush()
        fan_id = fan.id
    bad = {
        "forged": real[:-3] + ("aaa" if not real.endswith("aaa") else "bbb"),
        "other key": TokenSigner("x" * 40).sign(
            Purpose.webhook_manage, hook.id, "http://127.0.0.1:9/in"
        ),
        "other url": sign_webhook_manage_token(signer(app), hook.id, "http://127.0.0.1:9/other"),
        "an address's manage token": sign_manage_token(signer(app), fan_id, "fan@example.com"),
        "its unsubscribe token": signer(app).sign(
            Purpose.unsubscribe, hook.id, "http://127.0.0.1:9/in"
        ),
        "a webhook token for an email row": sign_webhook_manage_token(
            signer(app), fan_id, "fan@example.com"
        ),
        "nonsense": "nonsense",
    }
    for label, token in bad.items():
        r = await client.get("/api/v1/webhooks/me", headers=bearer(token))
        assert r.status_code == 401, label
        assert r.headers["www-authenticate"] == "Bearer"
        assert "webhook manage token" in r.json()["detail"]
        page = await client.get("/manage/webhook", params={"token": token})
        assert page.status_code == 401, label
        assert "text/html" in page.headers["content-type"] and "does not work" in page.text
    assert (await client.get("/api/v1/webhooks/me")).status_code == 401
    # The webhook's token is not an address's manage token either.
    assert (await client.get("/api/v1/me", headers=bearer(real))).status_code == 401
    assert (await client.get("/manage", params={"token": real})).status_code == 401


async def test_page_forms_need_their_csrf_token(hooks: Hooks) -> None:
    client, world = hooks.client, hooks.world
    hook, token = await hooks.hook()
    await client.get("/manage/webhook", params={"token": token})  # sets the cookie
    for path in (f"/manage/webhook/subscriptions/{hook.id}", "/manage/webhook/erase"):
        r = await client.post(
            path,
            params={"token": token},
            data={"csrf_token": "forged", "action": "pause", "confirm": "1"},
        )
        assert r.status_code == 403, path
    async with world.factory() as s:
        row = await s.get(EmailSubscription, hook.id)
        assert row is not None and not row.paused


async def test_erasing_from_the_page_the_api_or_by_admin_removes_the_rows_and_the_token(
    client: httpx.AsyncClient, app: FastAPI, world: World, admin: dict[str, str]
) -> None:
    await world.track("hikaru")
    await world.track("magnus")

    async def hook(path: str) -> str:
        url = f"http://127.0.0.1:9/{path}"
        sub = await add_webhook(world, url, "discord")
        await add_webhook(world, url, "discord", username="magnus")
        return sign_webhook_manage_token(signer(app), sub.id, url)

    async def rows(path: str) -> int:
        async with world.factory() as s:
            return (
                await s.scalar(
                    select(func.count())
                    .select_from(EmailSubscription)
                    .where(EmailSubscription.webhook_url == f"http://127.0.0.1:9/{path}")
                )
                or 0
            )

    by_page, by_api, by_admin = await hook("page"), await hook("api"), await hook("admin")

    page = await client.get("/manage/webhook", params={"token": by_page})
    csrf = csrf_of(page.text)
    r = await client.post(
        "/manage/webhook/erase", params={"token": by_page}, data={"csrf_token": csrf}
    )
    assert r.status_code == 422 and await rows("page") == 2  # the box must be ticked
    r = await client.post(
        "/manage/webhook/erase",
        params={"token": by_page},
        data={"csrf_token": csrf, "confirm": "1"},
    )
    assert r.status_code == 200 and "erased" in r.text
    assert await rows("page") == 0

    assert (await client.delete("/api/v1/webhooks/me", headers=bearer(by_api))).status_code == 204
    assert await rows("api") == 0

    r = await client.delete(
        "/api/v1/webhook-subscribers", params={"url": "http://127.0.0.1:9/admin"}, headers=admin
    )
    assert r.status_code == 204, r.text
    assert await rows("admin") == 0

    for token in (by_page, by_api, by_admin):
        assert (await client.get("/api/v1/webhooks/me", headers=bearer(token))).status_code == 401
        assert (await client.get("/manage/webhook", params={"token": token})).status_code == 401


@pytest.mark.parametrize("fmt", ["discord", "slack", "json"])
async def test_subscribing_an_active_webhook_again_posts_its_manage_link(
    fmt: str, hooks: Hooks
) -> None:
    """The way back to a webhook's settings once its messages are gone (as POST /me/link
    for an address): the subscription is unchanged, at most a few such posts a day."""
    with serve_receiver(FLAVOUR[fmt]) as receiver:
        sub = await hooks.start(receiver.url("/hook"), fmt)
        body = {"username": "hikaru", "webhook": {"url": receiver.url("/hook"), "format": fmt}}
        for _ in range(4):
            answer = await hooks.client.post("/api/v1/subscriptions", json=body)
            assert answer.status_code == 202, answer.text
            assert answer.json() == {"status": "pending_confirmation"}  # no secret again
        await hooks.make_worker(hooks.settings).run_once()
    posted = receiver.requests
    assert len(posted) == 3  # confirmation_emails_per_address_per_day
    for message in posted:
        token = manage_token(message.body)
        me = await hooks.client.get("/api/v1/webhooks/me", headers=bearer(token))
        assert [s["id"] for s in me.json()["subscriptions"]] == [sub.id]
        if fmt == "json":
            assert sub.webhook_secret is not None
            event = Webhook(sub.webhook_secret).verify(message.body, message.headers)
            assert event["type"] == "subscription.manage_link"
    async with hooks.world.factory() as s:
        row = await s.get(EmailSubscription, sub.id)
        assert row is not None and row.webhook_secret == sub.webhook_secret
        assert row.is_active and row.confirmed_at is not None


async def test_replacing_the_link_revokes_older_links_and_posts_the_new_one(
    hooks: Hooks,
) -> None:
    client = hooks.client
    with serve_receiver("discord") as receiver:
        await hooks.start(receiver.url("/hook"), "discord")
        await hooks.play("blitz")
        old = manage_token(receiver.requests[-1].body)
        csrf = csrf_of((await client.get("/manage/webhook", params={"token": old})).text)
        await asyncio.sleep(1.05)  # revocation is to the second: a later second than `old`'s
        r = await client.post(
            "/manage/webhook/new-link", params={"token": old}, data={"csrf_token": csrf}
        )
        assert r.status_code == 303, r.text
        page = await client.get(r.headers["location"])
        assert page.status_code == 200 and "Replaced" in page.text
        new = unquote(r.headers["location"].split("token=", 1)[1].split("&", 1)[0])
        assert new != old
        for token, status in ((old, 401), (new, 200)):
            assert (
                await client.get("/api/v1/webhooks/me", headers=bearer(token))
            ).status_code == status
            assert (
                await client.get("/manage/webhook", params={"token": token})
            ).status_code == status
        assert "replaced" in (await client.get("/api/v1/webhooks/me", headers=bearer(old))).text

        # The channel gets the new link too; it works.
        await hooks.make_worker(hooks.settings).run_once()
        assert len(receiver.requests) == 2
        posted = manage_token(receiver.requests[-1].body)
        assert (await client.get("/api/v1/webhooks/me", headers=bearer(posted))).status_code == 200

        # The same over the API: the answer carries the new link.
        await asyncio.sleep(1.05)
        r = await client.post("/api/v1/webhooks/me/link", headers=bearer(new))
        assert r.status_code == 200, r.text
        newest = r.json()["token"]
        assert r.json()["manage_url"] == f"http://testserver/manage/webhook?token={newest}"
        for token, status in ((new, 401), (posted, 401), (newest, 200)):
            assert (
                await client.get("/api/v1/webhooks/me", headers=bearer(token))
            ).status_code == status
