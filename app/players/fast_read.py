"""`GET /players/{username}` on a plain Starlette route, ahead of FastAPI's (issue 11).

This is the API's hottest read. Through FastAPI it paid for the nested router walk,
dependency resolution (cache keys, an exit stack for the connection dependency) and a
second validation of the response model: about half of its CPU time, measured with
py-spy (bench/RESULTS.md). The route below answers the same request with the same
service call and the same JSON, and nothing else; middleware (metrics, access log,
body limit) and the error handlers apply as to any route.

The FastAPI route stays: it is the documented operation (`players-get`) and it answers
what this one does not match. The path converter only matches a valid username, so a
malformed one still reaches FastAPI's validation and its documented 422.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.players import service
from app.players.schemas import PlayerOut
from app.schemas import USERNAME_PATTERN
from app.urls import API_PREFIX


class UsernameConvertor(Convertor[str]):
    """Exactly the usernames `USERNAME_PATTERN` admits."""

    regex = USERNAME_PATTERN.removeprefix("^").removesuffix("$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("chesscom_username", UsernameConvertor())


class GetPlayer:
    """The endpoint as a bare ASGI app: no Request or Response objects to build either.

    Errors (NotFound, a lost connection) propagate to the app's exception handlers.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = ROUTE  # FastAPI's router does not record which route it chose
        engine: AsyncEngine = scope["app"].state.read_engine
        async with engine.connect() as conn:
            row = await service.read_player(conn, scope["path_params"]["username"])
        body = PlayerOut.model_validate(row).model_dump_json().encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


ROUTE = Route(
    API_PREFIX + "/players/{username:chesscom_username}",
    GetPlayer(),
    methods=["GET"],
    include_in_schema=False,
)
ROUTE.methods = {"GET"}  # Starlette adds HEAD to GET routes; the contract has GET only


def install_fast_read(app: FastAPI) -> None:
    """Put the route first, so that it is tried before the routers."""
    app.router.routes.insert(0, ROUTE)
