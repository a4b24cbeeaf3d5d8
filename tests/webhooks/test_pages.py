"""The home page's webhook form (issue 13 item 1): CSRF-protected, refuses what the API
refuses, shows a json webhook's secret once."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import EmailSubscription, NotificationLog
from tests.fakes.chesscom import ChessComSimulator
from tests.subscribers.test_pages import csrf_of, form_page

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture(autouse=True)
def players(simulator: ChessComSimulator) -> None:
    simulator.add_player("Hikaru", name="Hikaru Nakamura")


async def count(factory: async_sessionmaker[AsyncSession], model: type) -> int:
    async with factory() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


async def test_home_page_subscribes_a_webhook_and_shows_the_secret_once(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    token = await form_page(client)
    home = (await client.get("/")).text
    assert 'action="/subscribe-webhook"' in home and 'name="webhook_format"' in home
    r = await client.post(
        "/subscribe-webhook",
        data={
            "csrf_token": token,
            "username": "Hikaru",
            "webhook_url": "http://127.0.0.1:9/in",
            "webhook_format": "json",
            "tc_blitz": "1",
            "tc_rapid": "1",
            "rated_only": "1",
        },
    )
    assert r.status_code == 200, r.text
    assert "Check your channel" in r.text
    async with session_factory() as s:
        sub = (await s.scalars(select(EmailSubscription))).one()
        kinds = (await s.scalars(select(NotificationLog.notification_type))).all()
    assert sub.webhook_secret is not None and sub.webhook_secret in r.text
    assert (sub.channel, sub.webhook_url, sub.webhook_format) == (
        "webhook",
        "http://127.0.0.1:9/in",
        "json",
    )
    assert kinds == ["confirmation"]
    assert (sub.time_classes, sub.rated_only) == (["blitz", "rapid"], True)


class TestRefusals:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"webhook_allow_private": False}  # the rules as in production

    @pytest.mark.parametrize(
        ("data", "field", "status"),
        [
            ({"webhook_url": "https://169.254.169.254/x"}, "webhook_url", 422),
            ({"webhook_url": "http://127.0.0.1:9/in"}, "webhook_url", 422),
            ({"webhook_url": "ftp://example.com/"}, "webhook_url", 422),
            ({"webhook_format": "teams"}, "webhook_format", 422),
            ({"username": "no"}, "hook_username", 422),
            ({"username": "nobody_here"}, "hook_username", 404),
            ({"tc_blitz": ""}, "hook_filters", 422),  # no kind of game ticked
        ],
    )
    async def test_bad_webhook_form_re_renders_with_a_message(
        self,
        data: dict[str, str],
        field: str,
        status: int,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        token = await form_page(client)
        body = {
            "csrf_token": token,
            "username": "hikaru",
            "webhook_url": "https://8.8.8.8/hook",
            "webhook_format": "discord",
            "tc_blitz": "1",
            **data,
        }
        r = await client.post("/subscribe-webhook", data=body)
        assert r.status_code == status, r.text
        assert f'id="{field}_error"' in r.text
        csrf_of(r.text)  # the form is there again
        assert await count(session_factory, EmailSubscription) == 0


async def test_webhook_form_without_csrf_is_refused(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await form_page(client)
    r = await client.post(
        "/subscribe-webhook",
        data={
            "csrf_token": "forged",
            "username": "hikaru",
            "webhook_url": "http://127.0.0.1:9/in",
            "webhook_format": "slack",
        },
    )
    assert r.status_code == 403
    assert await count(session_factory, EmailSubscription) == 0
