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

from starlette.types import Scope

from app.api.fast_read import FastPath, HotRoute
from app.player_pages.badge import badge
from app.player_pages.conditional import Answer
from app.player_pages.feed import feed
from app.urls import PLAYER_PATH

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


class PlayerFeeds(FastPath):
    """Answers GET of a badge or a feed."""

    pattern = re.compile(re.escape(PLAYER_PATH) + r"([^/]+)/(badge\.svg|feed\.atom)")

    def route(self, match: re.Match[str]) -> HotRoute:
        return ROUTES[match[2]]

    def answer(self, scope: Scope, match: re.Match[str]) -> Awaitable[Answer]:
        return _ANSWER[match[2]](scope, match[1])
