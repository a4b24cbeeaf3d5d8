"""Badges and feeds answered ahead of the framework's stack (SPEC §12, issue 21 item 5).

Like `app.api.fast_read.PlayerReads` for the JSON read: a GET of
`/p/{key}/badge.svg` or `/p/{key}/feed.atom` is answered here, by the same functions the
documented routes call (app.player_pages.badge / .feed), with errors rendered by the
app's own handlers; everything else goes on to the stack. The metrics and access-log
layer wraps this one, so these requests are counted and logged like any other.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.fast_read import answer_error
from app.player_pages.badge import badge
from app.player_pages.conditional import Answer
from app.player_pages.feed import feed
from app.urls import PLAYER_PATH


@dataclass(frozen=True)
class HotRoute:
    """What the metrics layer reads from `scope["route"]`: the path template."""

    path_format: str


_PATH = re.compile(re.escape(PLAYER_PATH) + r"([^/]+)/(badge\.svg|feed\.atom)")
ROUTES = {
    "badge.svg": HotRoute(PLAYER_PATH + "{key}/badge.svg"),
    "feed.atom": HotRoute(PLAYER_PATH + "{key}/feed.atom"),
}


def _badge(scope: Scope, key: str) -> Awaitable[Answer]:
    return badge(scope["app"].state.read_pool, key, scope["headers"])


def _feed(scope: Scope, key: str) -> Awaitable[Answer]:
    state = scope["app"].state
    return feed(
        state.read_pool, key, scope["headers"], state.settings.public_url, state.feed_bodies
    )


_ANSWER: dict[str, Callable[[Scope, str], Awaitable[Answer]]] = {
    "badge.svg": _badge,
    "feed.atom": _feed,
}


class PlayerFeeds:
    """Pure ASGI: answers GET of a badge or a feed, passes anything else to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            _PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = ROUTES[match[2]]
        try:
            answer = await _ANSWER[match[2]](scope, match[1])
        except Exception as exc:
            await answer_error(scope, receive, send, exc)
            return
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
        )
        await send({"type": "http.response.body", "body": answer.body})
