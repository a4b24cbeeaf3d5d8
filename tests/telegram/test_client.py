"""The Bot API client against the loopback Bot API (SPEC §11): long polling, sending
HTML that Telegram accepts, and what each answer means for the outbox row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.telegram import start_token, texts
from app.telegram.client import Answer, TelegramClient, TelegramError, Verdict, classify
from tests.fakes.telegram import TOKEN, TelegramSimulator, html_problem, serve_telegram

SECRET = "s" * 48


@pytest.fixture
def sim() -> Iterator[TelegramSimulator]:
    with serve_telegram() as s:
        yield s


@pytest.fixture
async def client(sim: TelegramSimulator) -> AsyncIterator[TelegramClient]:
    async with httpx.AsyncClient() as http:
        yield TelegramClient(sim.base_url, TOKEN, http)


async def test_get_me_names_the_bot(client: TelegramClient, sim: TelegramSimulator) -> None:
    assert await client.bot_username() == sim.username


async def test_a_wrong_token_is_an_error_that_does_not_show_the_token(
    sim: TelegramSimulator,
) -> None:
    async with httpx.AsyncClient() as http:
        wrong = TelegramClient(sim.base_url, "1:wrongwrongwrongwrongwrong", http)
        with pytest.raises(TelegramError) as caught:
            await wrong.bot_username()
    assert "wrongwrong" not in str(caught.value)


async def test_updates_are_long_polled_and_confirmed_by_offset(
    client: TelegramClient, sim: TelegramSimulator
) -> None:
    first = sim.user_sends(1001, "/start abc")
    sim.user_sends(1002, "/list")
    updates = await client.get_updates(0, wait=1)
    assert [(u.update_id, u.chat_id, u.text) for u in updates] == [
        (first, 1001, "/start abc"),
        (first + 1, 1002, "/list"),
    ]
    # The next call confirms them: they do not come again; it waits for a new one.
    assert await client.get_updates(updates[-1].update_id + 1, wait=0) == []
    assert sim.pending_updates == 0


async def test_an_update_without_a_chat_message_is_still_read(
    client: TelegramClient, sim: TelegramSimulator
) -> None:
    sim.other_update({"edited_message": {"text": "x"}})
    (update,) = await client.get_updates(0, wait=1)
    assert (update.chat_id, update.text) == (None, None)


async def test_an_alert_is_html_telegram_accepts(
    client: TelegramClient, sim: TelegramSimulator
) -> None:
    html = texts.alert(
        "<Hikaru> & co started playing",
        ["3+0 blitz vs <script>", "rated & fun"],
        "https://www.chess.com/game/live/1?a=1&b=2",
        "Watch the game",
        "https://helper.example/api/v1/unsubscribe?token=a&b",
    )
    assert html_problem(html) is None
    answer = await client.send_message(1001, html)
    assert answer.ok
    (sent,) = sim.to(1001)
    assert sent.parse_mode == "HTML" and sent.disable_web_page_preview
    assert "&lt;Hikaru&gt; &amp; co" in sent.text


@pytest.mark.parametrize(
    "reply",
    [
        texts.HELP,
        texts.started("<x>"),
        texts.started("<x>", "https://helper.example/manage/telegram?token=a&b=<c>"),
        texts.listing([("a&b", True)]),
        texts.listing([("a&b", True)], 'https://helper.example/manage/telegram?token="x"'),
        texts.stopped(2),
    ],
)
def test_every_reply_is_well_formed_html(reply: str) -> None:
    assert html_problem(reply) is None


async def test_unescaped_html_is_refused_like_telegram_does(client: TelegramClient) -> None:
    answer = await client.send_message(1001, "a < b & c")
    assert (answer.ok, answer.status) == (False, 400)
    assert classify(answer).verdict is Verdict.failed


async def test_a_second_message_to_a_chat_within_a_second_gets_429_retry_after(
    client: TelegramClient,
) -> None:
    assert (await client.send_message(7, "one")).ok
    answer = await client.send_message(7, "two")
    assert (answer.status, answer.retry_after) == (429, 1.0)
    judged = classify(answer)
    assert (judged.verdict, judged.retry_after) == (Verdict.retry, 1.0)


async def test_a_blocked_bot_means_the_chat_is_gone(
    client: TelegramClient, sim: TelegramSimulator
) -> None:
    sim.block(9)
    answer = await client.send_message(9, "hello")
    assert answer.status == 403
    assert classify(answer).verdict is Verdict.gone


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (Answer(True, 200), Verdict.delivered),
        (Answer(False, 400, description="Bad Request: chat not found"), Verdict.gone),
        (Answer(False, 502, description="Bad Gateway"), Verdict.retry),
        (Answer(False, 400, description="Bad Request: message is too long"), Verdict.failed),
    ],
)
def test_what_each_answer_means(answer: Answer, verdict: Verdict) -> None:
    assert classify(answer).verdict is verdict


# -- start tokens ------------------------------------------------------------------------


def test_a_start_token_fits_a_deep_link_and_names_its_subscription() -> None:
    token = start_token.sign(SECRET, 123456, now=1000)
    assert len(token) <= 64 and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    )
    assert start_token.verify(SECRET, token, now=2000).subscription_id == 123456


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # a changed signature
        lambda t: "A" + t[1:] if t[0] != "A" else "B" + t[1:],  # a changed id
        lambda t: t[:20],  # cut short
        lambda t: "hello",
        lambda t: "!!!",
    ],
)
def test_a_forged_start_token_is_refused(mangle: object) -> None:
    token = start_token.sign(SECRET, 42, now=1000)
    with pytest.raises(start_token.BadStartToken, match="not a start token"):
        start_token.verify(SECRET, mangle(token), now=1000)  # type: ignore[operator]


def test_a_token_of_another_installation_is_refused() -> None:
    token = start_token.sign("another secret key" * 3, 42, now=1000)
    with pytest.raises(start_token.BadStartToken):
        start_token.verify(SECRET, token, now=1000)


def test_an_expired_start_token_is_refused() -> None:
    token = start_token.sign(SECRET, 42, now=1000)
    with pytest.raises(start_token.BadStartToken, match="expired"):
        start_token.verify(SECRET, token, now=1000 + start_token.MAX_AGE_SECONDS + 1)
