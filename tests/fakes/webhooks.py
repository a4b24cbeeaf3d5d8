"""Webhook receivers on loopback: Discord-like, Slack-like and generic.

Each records every request it receives (path, headers, body) and answers from a
script (429 with `Retry-After` or Discord's `retry_after` body, 500, 404/410, a slow
answer, a trickling or oversized body), then with its flavour's normal answer:
Discord 204, Slack 200 `ok`, generic 200. The Discord and Slack receivers check a
body the way those services do (size limits, required keys) and answer 400 to a bad
one, so a payload that would bounce off the real service fails the tests too.

They run in a thread on 127.0.0.1 (see :func:`serve_receiver`); tests reach them only
with ``WEBHOOK_ALLOW_PRIVATE=true``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.asgi import header_map, not_http, read_body, wait_until
from tests.fakes.server import run_asgi_in_thread

Flavour = Literal["discord", "slack", "generic"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before the status line
    trickle: float = 0.0  # seconds between body bytes (a slow-drip server)

    @classmethod
    def json(cls, status: int, data: Any, **kw: Any) -> Reply:
        headers = (("content-type", "application/json"), *kw.pop("headers", ()))
        return cls(status, json.dumps(data).encode(), headers=headers, **kw)

    @classmethod
    def discord_rate_limited(cls, retry_after: float, *, header: bool = False) -> Reply:
        """Discord's 429: `retry_after` (seconds, float) in the body; the header optional."""
        extra = (("retry-after", str(max(1, round(retry_after)))),) if header else ()
        return cls.json(
            429,
            {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
            headers=extra,
        )

    @classmethod
    def rate_limited(cls, retry_after: int) -> Reply:
        return cls(429, b"slow down", headers=(("retry-after", str(retry_after)),))


@dataclass
class Receiver:
    """An ASGI app that records requests and plays a script of replies."""

    flavour: Flavour = "generic"
    requests: list[Received] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)
    in_flight: int = 0
    max_in_flight: int = 0
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def then(self, *replies: Reply) -> Receiver:
        """Answer the next requests with these replies, in order."""
        self.script.extend(replies)
        return self

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.requests]

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """Wait (from the test's loop) until `count` requests arrived."""
        await wait_until(
            lambda: len(self.requests) >= count,
            within,
            lambda: f"{len(self.requests)} requests arrived, expected {count}",
        )
        return list(self.requests)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await not_http(scope, receive, send):
            return
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await read_body(receive)
            self.requests.append(
                Received(
                    method=scope["method"],
                    path=scope["path"],
                    query=scope["query_string"].decode(),
                    headers=header_map(scope),
                    body=body,
                    at=time.monotonic(),
                )
            )
            reply = self.script.popleft() if self.script else self._normal(body)
            await self._answer(reply, send)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, reply: Reply, send: Any) -> None:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        if not reply.trickle:
            headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if reply.trickle:
            for i in range(len(reply.body)):
                await send(
                    {"type": "http.response.body", "body": reply.body[i : i + 1], "more_body": True}
                )
                await asyncio.sleep(reply.trickle)
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.body", "body": reply.body})

    def _normal(self, body: bytes) -> Reply:
        try:
            data = json.loads(body)
        except ValueError:
            return Reply.json(400, {"message": "body is not JSON"})
        if self.flavour == "discord":
            problem = discord_problem(data)
            if problem:
                return Reply.json(400, {"code": 50035, "message": f"Invalid Form Body: {problem}"})
            return Reply(204)
        if self.flavour == "slack":
            problem = slack_problem(data)
            return Reply(400, problem.encode()) if problem else Reply(200, b"ok")
        return Reply(200, b"")


def discord_problem(data: Any) -> str | None:
    """What Discord would refuse in an execute-webhook body (None: accepted)."""
    if not isinstance(data, dict):
        return "not an object"
    content = data.get("content") or ""
    embeds = data.get("embeds") or []
    if not content and not embeds:
        return "empty message"
    if len(content) > 2000:
        return "content longer than 2000"
    if len(embeds) > 10:
        return "more than 10 embeds"
    total = 0
    for embed in embeds:
        title = embed.get("title", "")
        description = embed.get("description", "")
        fields = embed.get("fields", [])
        if len(title) > 256 or len(description) > 4096 or len(fields) > 25:
            return "embed too long"
        if not isinstance(embed.get("color", 0), int) or not 0 <= embed.get("color", 0) <= 0xFFFFFF:
            return "bad colour"
        for f in fields:
            if not f.get("name") or not f.get("value"):
                return "empty field"
            if len(f["name"]) > 256 or len(f["value"]) > 1024:
                return "field too long"
            total += len(f["name"]) + len(f["value"])
        total += len(title) + len(description) + len(embed.get("author", {}).get("name", ""))
    if total > 6000:
        return "embeds longer than 6000 in total"
    return None


def slack_problem(data: Any) -> str | None:
    """What a Slack incoming webhook would refuse (None: accepted)."""
    if not isinstance(data, dict):
        return "invalid_payload"
    blocks = data.get("blocks")
    if not data.get("text") and not blocks:
        return "no_text"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            fields = block.get("fields", [])
            text = block.get("text", {}).get("text", "")
            if (not text and not fields) or len(text) > 3000 or len(fields) > 10:
                return "invalid_blocks"
            if any(len(f.get("text", "")) > 2000 or not f.get("text") for f in fields):
                return "invalid_blocks"
        elif kind == "context":
            if not 1 <= len(block.get("elements", [])) <= 10:
                return "invalid_blocks"
        elif kind not in {"header", "divider", "actions", "image"}:
            return "invalid_blocks"
    return None


async def offline_resolver(host: str, port: int) -> list[Any]:
    """Tests resolve no names: an app under test gets this as its webhook resolver, so a
    generated or mistyped webhook URL can never send a DNS query off the machine."""
    raise OSError(f"tests resolve no names ({host!r})")


@contextmanager
def serve_receiver(
    flavour: Flavour = "generic", host: str = "127.0.0.1", **uvicorn_options: Any
) -> Iterator[Receiver]:
    """A receiver listening on a loopback address (https when ssl_certfile is given)."""
    receiver = Receiver(flavour)
    with run_asgi_in_thread(receiver, host, **uvicorn_options) as base_url:
        receiver.base_url = base_url
        yield receiver
