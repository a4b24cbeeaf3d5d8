"""A Telegram chat's manage link (SPEC §11, issue 20 item 6): the bot's /start and /list
replies carry it; it opens a page with the chat's subscriptions only (pause, resume,
filters, unsubscribe) and "erase this chat"; another chat's subscription is 404, any
other token 401, and erasing ends the link."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import EmailSubscription, Player
from app.telegram import start_token, texts
from app.telegram.client import TelegramClient
from app.tokens import Purpose, TokenSigner
from tests.fakes.telegram import TOKEN, TelegramSimulator, serve_telegram
from tests.subscribers.test_pages import csrf_of, forms_refuse_another_subscription
from worker.telegram import TelegramPoller

CHAT, OTHER_CHAT = 4242, 5151
Factory = async_sessionmaker[AsyncSession]


@pytest.fixture
def sim() -> Iterator[TelegramSimulator]:
    with serve_telegram() as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def poller(
    sim: TelegramSimulator, http: httpx.AsyncClient, session_factory: Factory, settings: Settings
) -> TelegramPoller:
    return TelegramPoller(
        TelegramClient(sim.base_url, TOKEN, http),
        session_factory,
        settings.resolved_secret_key(),
        public_url=settings.public_url,
        wait_seconds=0,
    )


async def follow(
    session_factory: Factory, settings: Settings, sim: TelegramSimulator, p: TelegramPoller,
    username: str, chat: int,
) -> str:  # fmt: skip
    """A pending subscription to `username`, then /start in `chat`: the bot's reply."""
    async with session_factory() as session, session.begin():
        player = await session.scalar(select(Player).where(Player.username == username))
        if player is None:
            player = Player(player_id=abs(hash(username)) % 10**9 + 1, username=username)
            session.add(player)
            await session.flush()
        sub = EmailSubscription(channel="telegram", player_id=player.player_id)
        session.add(sub)
        await session.flush()
        sub_id = sub.id
    await asyncio.sleep(1.0)  # one message a second per chat
    return await say(
        sim, p, f"/start {start_token.sign(settings.resolved_secret_key(), sub_id)}", chat
    )


async def say(sim: TelegramSimulator, p: TelegramPoller, message: str, chat: int) -> str:
    before = len(sim.to(chat))
    sim.user_sends(chat, message)
    assert await p.poll_once() == 1
    (reply,) = sim.to(chat)[before:]
    return reply.text


def link_in(reply: str) -> str:
    found = re.search(r'<a href="([^"]+)">' + re.escape(texts.MANAGE_LABEL) + "</a>", reply)
    assert found, reply
    return html.unescape(found.group(1))


async def chat_rows(session_factory: Factory, chat: int) -> list[EmailSubscription]:
    async with session_factory() as session:
        found = await session.scalars(
            select(EmailSubscription)
            .where(EmailSubscription.telegram_chat_id == chat)
            .order_by(EmailSubscription.id)
        )
        return list(found.all())


async def test_the_link_of_start_and_list_manages_the_chat_and_nothing_else(
    client: httpx.AsyncClient,
    sim: TelegramSimulator,
    poller: TelegramPoller,
    session_factory: Factory,
    settings: Settings,
) -> None:
    started = await follow(session_factory, settings, sim, poller, "hikaru", CHAT)
    await follow(session_factory, settings, sim, poller, "magnus", CHAT)
    await follow(session_factory, settings, sim, poller, "hikaru", OTHER_CHAT)
    await asyncio.sleep(1.0)
    listed = await say(sim, poller, "/list", CHAT)
    hikaru, magnus = await chat_rows(session_factory, CHAT)
    (other,) = await chat_rows(session_factory, OTHER_CHAT)

    for link in (link_in(started), link_in(listed)):  # either link opens the chat's page
        page = await client.get(link)
        assert page.status_code == 200, page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert f'id="sub-{hikaru.id}-pause"' in page.text
        assert f'id="sub-{magnus.id}-pause"' in page.text
        assert f"sub-{other.id}" not in page.text and str(CHAT) not in page.text
    token = link_in(listed).split("token=", 1)[1]

    # Pause one player from the page; the other chat's subscription stays out of reach.
    form = f"/manage/telegram/subscriptions/{hikaru.id}"
    csrf = csrf_of(page.text)
    paused = await client.post(
        form, params={"token": token}, data={"csrf_token": csrf, "action": "pause"}
    )
    assert paused.status_code == 303
    assert paused.headers["location"].startswith("/manage/telegram?token=")
    assert f'id="sub-{hikaru.id}-resume"' in (await client.get(paused.headers["location"])).text
    await forms_refuse_another_subscription(client, "/manage/telegram", token, other.id)
    await asyncio.sleep(1.0)
    relisted = await say(sim, poller, "/list", CHAT)
    assert relisted == texts.listing([("hikaru", True), ("magnus", False)], link_in(relisted))
    assert not (await chat_rows(session_factory, OTHER_CHAT))[0].paused

    # Erase the chat: its rows go, the other chat's stay, and the link stops working.
    erased = await client.post(
        "/manage/telegram/erase",
        params={"token": token},
        data={"csrf_token": csrf, "confirm": "1"},
    )
    assert erased.status_code == 200 and "This chat has been erased" in erased.text
    assert await chat_rows(session_factory, CHAT) == []
    assert len(await chat_rows(session_factory, OTHER_CHAT)) == 1
    gone = await client.get("/manage/telegram", params={"token": token})
    assert gone.status_code == 401 and "/list" in gone.text


async def test_forged_and_foreign_tokens_are_refused(
    client: httpx.AsyncClient,
    sim: TelegramSimulator,
    poller: TelegramPoller,
    session_factory: Factory,
    settings: Settings,
) -> None:
    await follow(session_factory, settings, sim, poller, "hikaru", CHAT)
    (sub,) = await chat_rows(session_factory, CHAT)
    signer = TokenSigner(settings.resolved_secret_key())
    for token in [
        "",
        "forged",
        TokenSigner("another installation's key").sign(
            Purpose.telegram_manage, sub.id, f"telegram:{CHAT}"
        ),
        signer.sign(Purpose.telegram_manage, sub.id, f"telegram:{OTHER_CHAT}"),
        signer.sign(Purpose.webhook_manage, sub.id, f"telegram:{CHAT}"),
        signer.sign(Purpose.manage, sub.id, f"telegram:{CHAT}"),
    ]:
        page = await client.get("/manage/telegram", params={"token": token})
        assert page.status_code == 401, token
        assert "This link does not work" in page.text
