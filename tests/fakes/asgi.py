"""What the loopback fakes' ASGI sides share (webhook receivers, the push service, the
ntfy server, the Telegram Bot API): the lifespan handshake, a request's body and
headers, a response in one piece, and a test waiting for what a fake has seen."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def not_http(
    scope: Scope, receive: Receive, send: Send, on_startup: Callable[[], None] | None = None
) -> bool:
    """True when the call is not an HTTP request: the lifespan protocol is answered here
    (`on_startup` runs in the server's loop before it completes)."""
    if scope["type"] == "lifespan":
        while True:
            event = (await receive())["type"]
            if event == "lifespan.startup":
                if on_startup is not None:
                    on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif event == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return True
    return bool(scope["type"] != "http")


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


def header_map(scope: Scope) -> dict[str, str]:
    """The request's headers, names in lower case (latin-1, as HTTP/1.1 carries them)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def respond(
    send: Send, status: int, body: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, answer: Any) -> None:
    await respond(
        send, status, json.dumps(answer).encode(), [(b"content-type", b"application/json")]
    )


async def wait_until(
    condition: Callable[[], bool], within: float, failure: Callable[[], str]
) -> None:
    """Wait (from the test's loop) until `condition()`; AssertionError(`failure()`) after
    `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(failure())
        await asyncio.sleep(0.02)
