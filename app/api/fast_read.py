"""`GET /players/{username}` answered ahead of the framework's stack (issue 11).

This is the API's hottest read, and the framework's share of it was larger than the
query's: FastAPI's router walk, dependency resolution and response validation first,
then, once a plain Starlette route served it, the middleware layers every request
passes (server errors, telemetry, body limit, exception handling, an exit stack), each
wrapping `send` once more (py-spy, bench/RESULTS.md). `PlayerReads` sits in front of
that stack (see `app.main.App`): a GET whose path is a player's answers from here with
the operation's one implementation (`app.players.service.player_json`, which the route
calls too) and the same error answers, rendered by the app's own exception handlers;
everything else goes on to the stack. The metrics and access log layer wraps both, so
the request is counted and logged like any other. `FastPath` is that shape, written
once: the badges and feeds of app/api/player_feeds.py are answered by it too.

The FastAPI route stays: it is the documented operation (`players-get`) and it answers
what this one does not match. The path pattern only matches a valid username, so a
malformed one still reaches FastAPI's validation and its documented 422; HEAD goes
there too (405, as the contract has GET only).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import ClassVar

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.player_pages.conditional import Answer
from app.players import service
from app.schemas import USERNAME_PATTERN
from app.urls import API_PREFIX


@dataclass(frozen=True)
class HotRoute:
    """What the metrics layer reads from `scope["route"]`: the path template."""

    path_format: str


class FastPath:
    """Pure ASGI: a GET whose path fully matches `pattern` is answered by `answer`
    (errors by the app's own handlers, `answer_error`); anything else goes on to `app`.
    A subclass states the pattern, the route template per match and the answer."""

    pattern: ClassVar[re.Pattern[str]]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def route(self, match: re.Match[str]) -> HotRoute:
        raise NotImplementedError

    def answer(self, scope: Scope, match: re.Match[str]) -> Awaitable[Answer]:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            self.pattern.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route(match)
        try:
            answer = await self.answer(scope, match)
        except Exception as exc:
            await answer_error(scope, receive, send, exc)
            return
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
        )
        await send({"type": "http.response.body", "body": answer.body})


ROUTE = HotRoute(API_PREFIX + "/players/{username}")
_JSON = (b"content-type", b"application/json")


class PlayerReads(FastPath):
    """Answers `GET /players/{username}`."""

    pattern = re.compile(
        re.escape(API_PREFIX + "/players/")
        + "("
        + USERNAME_PATTERN.removeprefix("^").removesuffix("$")
        + ")"
    )

    def route(self, match: re.Match[str]) -> HotRoute:
        return ROUTE

    async def answer(self, scope: Scope, match: re.Match[str]) -> Answer:
        body = await service.player_json(scope["app"].state.read_pool, match[1])
        return Answer(200, [_JSON, (b"content-length", b"%d" % len(body))], body)


async def answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Render `exc` with the app's own handler for it (404, 503, 500: the usual bodies)."""
    handlers = scope["app"].exception_handlers
    # The most specific class first, as Starlette's exception middleware looks them up
    # (`Exception` has one: app.api.errors).
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        raise exc
    response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)
