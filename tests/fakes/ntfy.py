"""An ntfy server on loopback (https://docs.ntfy.sh/publish/), for what we post to it.

`POST /<topic>` publishes the body as the message; `Title`, `Click`, `Tags`,
`Priority` (and their `X-` spellings) are read as ntfy reads them: RFC 2047 encoded
values decoded, a priority outside 1-5 / min..urgent → 400, a `Click` that is not a
URL → 400, a topic outside `[-_A-Za-z0-9]{1,64}` → 404, a body over 4096 bytes would
become an attachment (refused here: 413, we never send one). Each accepted message is
answered 200 with ntfy's JSON (id, time, event, topic, message...) and recorded.
"""

from __future__ import annotations

import email.header
import re
import secrets
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.asgi import header_map, not_http, read_body, respond_json, wait_until
from tests.fakes.server import run_asgi_in_thread
from tests.fakes.webhooks import Reply

_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")
_PRIORITIES = {"1": 1, "min": 1, "2": 2, "low": 2, "3": 3, "default": 3, "4": 4, "high": 4,
               "5": 5, "max": 5, "urgent": 5}  # fmt: skip


@dataclass(frozen=True)
class Published:
    topic: str
    title: str | None
    message: str
    click: str | None
    tags: list[str]
    priority: int
    headers: dict[str, str]


def _decoded(value: str | None) -> str | None:
    if value is None:
        return None
    return str(email.header.make_header(email.header.decode_header(value)))


@dataclass
class NtfyServer:
    base_url: str = ""
    published: list[Published] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)

    def url(self, topic: str) -> str:
        return f"{self.base_url}/{topic}"

    def topic(self, name: str) -> list[Published]:
        return [p for p in self.published if p.topic == name]

    def then(self, *replies: Reply) -> NtfyServer:
        self.script.extend(replies)
        return self

    async def wait_for(self, count: int, within: float = 10.0) -> list[Published]:
        await wait_until(
            lambda: len(self.published) >= count,
            within,
            lambda: f"{len(self.published)} ntfy messages, expected {count}",
        )
        return list(self.published)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await not_http(scope, receive, send):
            return
        body = await read_body(receive)
        status, answer = self._publish(scope["method"], scope["path"], header_map(scope), body)
        await respond_json(send, status, answer)

    def _publish(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if self.script:
            reply = self.script.popleft()
            return reply.status, {"code": reply.status, "error": "scripted"}
        topic = path.strip("/")
        if method not in ("POST", "PUT") or not _TOPIC.match(topic):
            return 404, {"code": 40401, "http": 404, "error": "page not found"}
        if len(body) > 4096:
            return 413, {"code": 41301, "http": 413, "error": "attachments not allowed"}

        def get(name: str) -> str | None:
            return headers.get(name, headers.get(f"x-{name}"))

        priority_raw = (get("priority") or "default").lower()
        if priority_raw not in _PRIORITIES:
            return 400, {"code": 40007, "http": 400, "error": "invalid priority"}
        click = _decoded(get("click"))
        if click is not None and not re.match(r"^https?://", click):
            return 400, {"code": 40013, "http": 400, "error": "invalid click URL"}
        published = Published(
            topic=topic,
            title=_decoded(get("title")),
            message=body.decode("utf-8"),
            click=click,
            tags=[t.strip() for t in (get("tags") or "").split(",") if t.strip()],
            priority=_PRIORITIES[priority_raw],
            headers=headers,
        )
        self.published.append(published)
        return 200, {
            "id": secrets.token_hex(6),
            "time": int(time.time()),
            "event": "message",
            "topic": topic,
            "title": published.title,
            "message": published.message,
            "priority": published.priority,
            "tags": published.tags,
            "click": click,
        }


@contextmanager
def serve_ntfy(host: str = "127.0.0.1") -> Iterator[NtfyServer]:
    server = NtfyServer()
    with run_asgi_in_thread(server, host) as base_url:
        server.base_url = base_url
        yield server
