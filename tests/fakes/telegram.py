"""A loopback Telegram Bot API that behaves like api.telegram.org for what we use.

- `/bot<token>/getMe`, `getUpdates` (long polling: `offset` confirms earlier updates,
  `timeout` seconds are waited for a new one; a second getUpdates running at the same
  time gets 409 Conflict, as Telegram answers), `sendMessage` (recorded);
- a wrong token → 401; `parse_mode=HTML` text that is not well-formed Telegram HTML
  (unknown tag, unescaped `<` or `&`) → 400 "can't parse entities"; text over 4096
  characters → 400;
- limits: more than 30 messages in a second per bot, or more than 1 a second per chat
  → 429 with `parameters.retry_after`;
- a chat whose user blocked the bot → 403 "Forbidden: bot was blocked by the user".

Tests play the user with :meth:`TelegramSimulator.user_sends`. It runs in a thread
(:func:`serve_telegram`) or, for the benchmark, with ``record_text=False`` and
``enforce_limits`` on to count how long a drain takes.
"""

from __future__ import annotations

import asyncio
import html.parser
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.asgi import header_map, not_http, read_body, respond_json, wait_until
from tests.fakes.server import run_asgi_in_thread

TOKEN = "123456789:TESTtokenTESTtokenTESTtokenTESTtoken"
BOT_USERNAME = "chess_helper_test_bot"
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "tg-spoiler", "span", "blockquote",
}  # fmt: skip


@dataclass(frozen=True)
class Sent:
    chat_id: int
    text: str
    parse_mode: str | None
    disable_web_page_preview: bool
    at: float


class _HtmlCheck(html.parser.HTMLParser):
    """Telegram's HTML parse mode: only its tags, every `<` and `&` escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.problem: str | None = None
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problem = f'unsupported start tag "{tag}"'
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problem = f'unexpected end tag "{tag}"'

    def handle_entityref(self, name: str) -> None:
        if name not in {"lt", "gt", "amp", "quot"}:
            self.problem = f'unsupported entity "&{name};"'

    def handle_data(self, data: str) -> None:
        if "<" in data or "&" in data:
            self.problem = "unescaped character in text"


def html_problem(text: str) -> str | None:
    if "&" in text.replace("&lt;", "").replace("&gt;", "").replace("&amp;", "").replace(
        "&quot;", ""
    ):
        return 'unescaped "&"'
    checker = _HtmlCheck()
    checker.feed(text)
    checker.close()
    if checker.problem is None and checker.open:
        return f'unclosed tag "{checker.open[-1]}"'
    return checker.problem


@dataclass
class TelegramSimulator:
    token: str = TOKEN
    username: str = BOT_USERNAME
    base_url: str = ""
    per_bot_per_second: int = 30
    per_chat_per_second: int = 1
    record_text: bool = True
    sent: list[Sent] = field(default_factory=list)
    delivered: int = 0
    limited: int = 0  # 429s answered
    blocked: set[int] = field(default_factory=set)
    calls: dict[str, int] = field(default_factory=dict)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _next_update: int = 1
    _confirmed: int = 0
    _polling: bool = False
    _bot_window: deque[float] = field(default_factory=deque)
    _chat_last: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _new: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    # -- the user's side ----------------------------------------------------------

    def user_sends(self, chat_id: int, text: str, *, first_name: str = "Fan") -> int:
        """A user writes to the bot in a private chat; returns the update's id."""
        with self._lock:
            update_id = self._next_update
            self._next_update += 1
            self._updates.append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id,
                        "from": {"id": chat_id, "is_bot": False, "first_name": first_name},
                        "chat": {"id": chat_id, "type": "private", "first_name": first_name},
                        "date": int(time.time()),
                        "text": text,
                    },
                }
            )
        self._wake()
        return update_id

    def other_update(self, update: dict[str, Any]) -> int:
        """Any other update (an edited message, a sticker...): the id is filled in."""
        with self._lock:
            update_id = self._next_update
            self._next_update += 1
            self._updates.append({"update_id": update_id, **update})
        self._wake()
        return update_id

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sendMessage to the chat answers 403 from now on."""
        self.blocked.add(chat_id)

    def to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    @property
    def pending_updates(self) -> int:
        with self._lock:
            return sum(1 for u in self._updates if u["update_id"] > self._confirmed)

    async def wait_for(self, predicate: Any, within: float = 10.0) -> None:
        await wait_until(
            predicate, within, lambda: "the Telegram simulator did not see what was expected"
        )

    def _wake(self) -> None:
        loop, new = self._loop, self._new
        if loop is not None and new is not None:
            loop.call_soon_threadsafe(new.set)

    # -- the Bot API side ---------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await not_http(scope, receive, send, on_startup=self._started):
            return
        body = await read_body(receive)
        content_type = header_map(scope).get("content-type", "")
        params = _params(scope["query_string"].decode(), content_type, body)
        status, answer = await self._answer(scope["path"], params)
        await respond_json(send, status, answer)

    def _started(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._new = asyncio.Event()

    async def _answer(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        prefix, _, method = path.lstrip("/").partition("/")
        if prefix != f"bot{self.token}":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        self.calls[method] = self.calls.get(method, 0) + 1
        if method == "getMe":
            return 200, {
                "ok": True,
                "result": {"id": 123456789, "is_bot": True, "username": self.username},
            }
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "sendMessage":
            return self._send_message(params)
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    async def _get_updates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._polling:
            return 409, {
                "ok": False,
                "error_code": 409,
                "description": "Conflict: terminated by other getUpdates request; make sure"
                " that only one bot instance is running",
            }
        self._polling = True
        try:
            offset = int(params.get("offset") or 0)
            timeout = min(50.0, float(params.get("timeout") or 0))
            limit = int(params.get("limit") or 100)
            deadline = time.monotonic() + timeout
            while True:
                with self._lock:
                    if offset:
                        self._confirmed = max(self._confirmed, offset - 1)
                    ready = [u for u in self._updates if u["update_id"] > self._confirmed]
                if ready or time.monotonic() >= deadline:
                    return 200, {"ok": True, "result": ready[:limit]}
                assert self._new is not None
                self._new.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), deadline - time.monotonic())
        finally:
            self._polling = False

    def _send_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            chat_id = int(params["chat_id"])
            text = str(params["text"])
        except (KeyError, ValueError):
            return _error(400, "Bad Request: chat_id and text are required")
        now = time.monotonic()
        with self._lock:
            while self._bot_window and now - self._bot_window[0] >= 1.0:
                self._bot_window.popleft()
            last = self._chat_last.get(chat_id)
            if last is not None and now - last < 1.0 / self.per_chat_per_second:
                self.limited += 1
                return _limited(1)
            if len(self._bot_window) >= self.per_bot_per_second:
                self.limited += 1
                return _limited(1)
            if chat_id in self.blocked:
                return _error(403, "Forbidden: bot was blocked by the user")
            if not text.strip():
                return _error(400, "Bad Request: message text is empty")
            if len(text) > 4096:
                return _error(400, "Bad Request: message is too long")
            mode = params.get("parse_mode")
            if mode == "HTML" and (problem := html_problem(text)) is not None:
                return _error(400, f"Bad Request: can't parse entities: {problem}")
            self._bot_window.append(now)
            self._chat_last[chat_id] = now
            self.delivered += 1
            preview = str(params.get("disable_web_page_preview", "")).lower() in {"true", "1"}
            preview = preview or bool(
                isinstance(params.get("link_preview_options"), dict)
                and params["link_preview_options"].get("is_disabled")
            )
            if self.record_text:
                self.sent.append(Sent(chat_id, text, mode, preview, now))
            message_id = self.delivered
        return 200, {
            "ok": True,
            "result": {"message_id": message_id, "chat": {"id": chat_id}, "text": text},
        }


def _error(code: int, description: str) -> tuple[int, dict[str, Any]]:
    return code, {"ok": False, "error_code": code, "description": description}


def _limited(retry_after: int) -> tuple[int, dict[str, Any]]:
    return 429, {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {retry_after}",
        "parameters": {"retry_after": retry_after},
    }


def _params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
    if body and content_type.startswith("application/json"):
        data = json.loads(body)
        if isinstance(data, dict):
            params.update(data)
    elif body:
        params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
    return params


@contextmanager
def serve_telegram(host: str = "127.0.0.1", **options: Any) -> Iterator[TelegramSimulator]:
    sim = TelegramSimulator(**options)
    with run_asgi_in_thread(sim, host, lifespan="on") as base_url:
        sim.base_url = base_url
        yield sim
