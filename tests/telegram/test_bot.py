"""The bot's side of a chat (SPEC §11): `/start <token>` binds the chat, `/list` lists its
players, `/stop` ends everything; bad tokens and unknown messages get polite replies
and change nothing. One poller across workers, by lease; updates handled once."""

from __future__ import annotations

import asyncio
import html
import itertools
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import EmailSubscription, Player
from app.telegram import start_token, texts
from app.telegram.client import TelegramClient
from app.telegram.slots import SendSlots
from tests.fakes.telegram import TOKEN, TelegramSimulator, html_problem, serve_telegram
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


def poller(
    sim: TelegramSimulator,
    http: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    holder: str = "worker-1",
) -> TelegramPoller:
    return TelegramPoller(
        TelegramClient(sim.base_url, TOKEN, http),
        session_factory,
        settings.resolved_secret_key(),
        public_url=settings.public_url,
        wait_seconds=0,
        holder=holder,
    )


def manage_link(reply: str, settings: Settings) -> str:
    """The chat's manage link a reply ends with (its page: tests/telegram/test_manage.py)."""
    found = re.search(r'<a href="([^"]+)">' + re.escape(texts.MANAGE_LABEL) + "</a>$", reply)
    assert found, reply
    link = html.unescape(found.group(1))
    assert link.startswith(settings.public_url + "/manage/telegram?token="), link
    return link


async def pending(session_factory: async_sessionmaker[AsyncSession], username: str) -> int:
    """A pending Telegram subscription to `username` (as POST /subscriptions makes)."""
    async with session_factory() as session, session.begin():
        platform, _, name = username.rpartition(":")
        player_id = abs(hash(username)) % 10**9 + 1
        if platform:  # a Lichess player: negative ids (SPEC §5)
            player_id = -player_id
        if await session.get(Player, player_id) is None:
            player = Player(player_id=player_id, username=name, platform=platform or "chesscom")
            session.add(player)
            await session.flush()
        sub = EmailSubscription(channel="telegram", player_id=player_id)
        session.add(sub)
        await session.flush()
        return sub.id


async def subscription(
    session_factory: async_sessionmaker[AsyncSession], sub_id: int
) -> EmailSubscription | None:
    async with session_factory() as session:
        return await session.get(EmailSubscription, sub_id)


async def chat_says(sim: TelegramSimulator, p: TelegramPoller, text_: str, chat: int = CHAT) -> str:
    before = len(sim.to(chat))
    sim.user_sends(chat, text_)
    assert await p.poll_once() == 1
    replies = sim.to(chat)[before:]
    assert len(replies) == 1, replies
    assert html_problem(replies[0].text) is None
    return replies[0].text


async def test_start_with_a_good_token_binds_the_chat(
    sim: TelegramSimulator,
    http: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    sub_id = await pending(session_factory, "hikaru")
    token = start_token.sign(settings.resolved_secret_key(), sub_id)
    p = poller(sim, http, session_factory, settings)
    reply = await chat_says(sim, p, f"/start {token}")
    assert reply == texts.started("hikaru", manage_link(reply, settings))
    sub = await subscription(session_factory, sub_id)
    assert sub is not None and sub.telegram_chat_id == CHAT
    assert sub.is_active and sub.confirmed_at is not None
    # Again from the same chat: harmless.
    again = await chat_says(sim, p, f"/start {token}")
    assert again == texts.already("hikaru", manage_link(again, settings))


async def test_a_used_token_binds_no_other_chat(
    sim: TelegramSimulator,
    http: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    sub_id = await pending(session_factory, "hikaru")
    token = start_token.sign(settings.resolved_secret_key(), sub_id)
    p = poller(sim, http, session_factory, settings)
    await chat_says(sim, p, f"/start {token}")
    assert await chat_says(sim, p, f"/start {token}", chat=OTHER_CHAT) == texts.USED_TOKEN
    sub = await subscription(session_factory, sub_id)
    assert sub is not None and sub.telegram_chat_id == CHAT


@pytest.mark.parametrize(
    ("token", "reply"),
    [
        ("forged", texts.BAD_TOKEN),
        (start_token.sign("another installation's key" * 2, 1), texts.BAD_TOKEN),
        (start_token.sign("test-secret-key-" + "x" * 32, 1, now=1_000_000), texts.EXPIRED_TOKEN),
    ],
    ids=["forged", "another-installation", "expired"],  # tokens carry the time: fixed ids
)
async def test_a_bad_token_gets_a_polite_reply_and_binds_nothing(
    sim: TelegramSimulator, http: httpx.AsyncClient, session_factory: Factory,
    settings: Settings,
    token: str, reply: str,
) -> None:  # fmt: skip
    sub_id = await pending(session_factory, "hikaru")
    p = poller(sim, http, session_factory, settings)
    assert await chat_says(sim, p, f"/start {token}") == reply
    sub = await subscription(session_factory, sub_id)
    assert sub is not None and sub.telegram_chat_id is None and sub.confirmed_at is None


@pytest.mark.parametrize("message", ["hello", "/start", "/whatever", "/help", "🙂"])
async def test_anything_else_gets_the_help_text(
    sim: TelegramSimulator, http: httpx.AsyncClient, session_factory: Factory,
    settings: Settings,
    message: str,
) -> None:  # fmt: skip
    p = poller(sim, http, session_factory, settings)
    assert await chat_says(sim, p, message) == texts.HELP


async def test_an_update_that_is_not_a_message_is_skipped_silently(
    sim: TelegramSimulator,
    http: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    p = poller(sim, http, session_factory, settings)
    sim.other_update({"my_chat_member": {"chat": {"id": CHAT}}})
    assert await p.poll_once() == 1
    assert sim.sent == []
    assert await p.poll_once() == 0  # confirmed: it does not come again


async def test_list_and_stop(
    sim: TelegramSimulator,
    http: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    p = poller(sim, http, session_factory, settings)
    secret = settings.resolved_secret_key()
    # A Chess.com and a Lichess player of one name are listed apart, by key.
    for name in ("magnus", "hikaru", "lichess:hikaru"):
        await asyncio.sleep(1.0)  # one message a second per chat
        await chat_says(
            sim, p, f"/start {start_token.sign(secret, await pending(session_factory, name))}"
        )
    await asyncio.sleep(1.0)
    listed = await chat_says(sim, p, "/list")
    link = manage_link(listed, settings)
    assert listed == texts.listing(
        [("hikaru", False), ("lichess:hikaru", False), ("magnus", False)], link
    )
    await asyncio.sleep(1.0)
    assert await chat_says(sim, p, "/stop") == texts.stopped(3)
    async with session_factory() as session:
        active = await session.scalar(
            select(EmailSubscription.id).where(
                EmailSubscription.telegram_chat_id == CHAT, EmailSubscription.is_active
            )
        )
    assert active is None
    await asyncio.sleep(1.0)
    after = await chat_says(sim, p, "/list")  # the page still shows what was stopped
    assert after == texts.listing([], manage_link(after, settings))
    assert after.startswith(texts.NOTHING)


async def test_one_poller_at_a_time_and_a_dead_ones_lease_is_taken_over(
    sim: TelegramSimulator,
    http: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    first = poller(sim, http, session_factory, settings, holder="worker-1")
    second = poller(sim, http, session_factory, settings, holder="worker-2")
    assert await first.poll_once() == 0
    assert await second.poll_once() is None  # the lease is the first's
    sim.user_sends(CHAT, "/help")
    # The first dies without releasing: its lease runs out, the second takes over and
    # reads from where the first stopped.
    async with session_factory() as session, session.begin():
        await session.execute(text("UPDATE telegram_bot SET poller_until = now() - interval '1 s'"))
    assert await second.poll_once() == 1
    assert await first.poll_once() is None
    await second.release()
    assert await first.poll_once() == 0


async def test_send_slots_space_the_bot_and_each_chat(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    slots = SendSlots(session_factory, per_bot=10, per_chat=1, horizon=3)
    taken = [await slots.take(chat) for chat in range(1, 6)]
    times = [slot.at for slot in taken if slot.at is not None]
    # Five chats: one bot slot each, at least 0.1 s apart (later when a call came later).
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(slot.taken for slot in taken) and len(gaps) == 4
    assert all(gap >= 0.0999 for gap in gaps), gaps
    again = await slots.take(1)  # chat 1 again: a second (and the margin) after its first
    assert again.taken and again.at is not None
    assert (again.at - times[0]).total_seconds() >= 1.0999
    # Chat 1's next slots are 1.1 s apart: they are taken until one is further ahead
    # than the horizon (3 s), which is refused, whenever the calls happen.
    for _ in range(5):
        late = await slots.take(1)
        if not late.taken:
            break
    assert not late.taken and late.wait > 3
    await slots.hold(30)
    held = await slots.take(99)
    assert not held.taken and held.wait > 29
