"""The Telegram Bot API, the three methods we use: getMe, getUpdates, sendMessage.

Plain httpx rather than aiogram or python-telegram-bot: those are frameworks (their
own dispatcher, polling loop, per-process rate limiter and, for aiogram, aiohttp),
while here one long-poller per deployment runs under a database lease and the limits
(30 messages/s per bot, 1/s per chat) hold across every worker, so they are ours to
keep in PostgreSQL. What is left is three JSON calls; the answers are read into
typed values and judged in :func:`classify`, close to the client that raised them.

The token is part of every URL (`/bot<token>/<method>`): it never appears in an
error message or a log line from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

MAX_TEXT = 4096  # characters of one message (Telegram refuses longer)
MAX_RETRY_AFTER = 3600.0


class TelegramError(Exception):
    """No usable answer came (network error, timeout, not JSON): worth retrying."""


class Verdict(StrEnum):
    delivered = "delivered"
    retry = "retry"  # after `retry_after` when Telegram said so
    gone = "gone"  # the chat is unreachable for good (blocked, deleted): deactivate
    failed = "failed"  # this message never will be accepted


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool
    status: int
    result: Any = None
    description: str = ""
    retry_after: float | None = None  # `parameters.retry_after` of a 429


@dataclass(frozen=True, slots=True)
class Judged:
    verdict: Verdict
    error: str | None = None
    retry_after: float | None = None


def classify(answer: Answer) -> Judged:
    """What an answer to sendMessage means for the outbox row."""
    if answer.ok:
        return Judged(Verdict.delivered)
    described = f"Telegram {answer.status}: {answer.description}"[:500]
    if answer.status == 429:
        wait = min(MAX_RETRY_AFTER, answer.retry_after if answer.retry_after else 1.0)
        return Judged(Verdict.retry, described, wait)
    # 403: the user blocked the bot (or left, or deleted the account); 400 "chat not
    # found": the chat no longer exists. Either way nothing will ever reach it.
    if answer.status == 403 or (
        answer.status == 400 and "chat not found" in answer.description.lower()
    ):
        return Judged(Verdict.gone, described)
    if answer.status >= 500 or answer.status in (408, 409):
        return Judged(Verdict.retry, described)
    return Judged(Verdict.failed, described)


@dataclass(frozen=True, slots=True)
class Update:
    update_id: int
    chat_id: int | None  # None: not a message in a chat (edits, reactions, members...)
    text: str | None
    private: bool = True


def parse_update(raw: Any) -> Update | None:
    """One update of getUpdates, or None if it is not even an update."""
    if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
        return None
    message = raw.get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        return Update(raw["update_id"], None, None)
    text = message.get("text") if isinstance(message, dict) else None
    return Update(
        raw["update_id"],
        chat["id"],
        text if isinstance(text, str) else None,
        chat.get("type") == "private",
    )


class TelegramClient:
    """Calls the Bot API over one httpx client (built and closed by the owner)."""

    def __init__(self, base_url: str, token: str, http: httpx.AsyncClient) -> None:
        self._base = f"{base_url.rstrip('/')}/bot{token}"
        self._http = http

    async def call(self, method: str, params: dict[str, Any], *, within: float = 10.0) -> Answer:
        try:
            response = await self._http.post(f"{self._base}/{method}", json=params, timeout=within)
            data = response.json()
        except httpx.HTTPError as exc:
            # The exception's text could carry the URL, hence the token: name it only.
            raise TelegramError(f"{method}: {type(exc).__name__}") from None
        except ValueError:
            raise TelegramError(f"{method}: HTTP {response.status_code}, not JSON") from None
        if not isinstance(data, dict):
            raise TelegramError(f"{method}: HTTP {response.status_code}, not an object")
        parameters = data.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        return Answer(
            ok=bool(data.get("ok")),
            status=response.status_code,
            result=data.get("result"),
            description=str(data.get("description") or ""),
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        )

    async def bot_username(self) -> str:
        answer = await self.call("getMe", {})
        if not answer.ok or not isinstance(answer.result, dict):
            raise TelegramError(f"getMe: {answer.status} {answer.description}")
        return str(answer.result.get("username") or "")

    async def get_updates(self, offset: int, *, wait: int = 25) -> list[Update]:
        """Updates after ``offset`` (confirming the earlier ones), waiting up to
        ``wait`` seconds for one to come."""
        answer = await self.call(
            "getUpdates",
            {"offset": offset, "timeout": wait, "allowed_updates": ["message"]},
            within=wait + 10.0,
        )
        if not answer.ok or not isinstance(answer.result, list):
            raise TelegramError(f"getUpdates: {answer.status} {answer.description}")
        return [u for u in map(parse_update, answer.result) if u is not None]

    async def send_message(self, chat_id: int, html_text: str) -> Answer:
        return await self.call(
            "sendMessage",
            {
                "chat_id": chat_id,
                "text": html_text,
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True},
            },
        )
