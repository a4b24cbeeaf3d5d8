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
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.players import service
from app.players.schemas import PlayerOut
from app.urls import API_PREFIX


class UsernameConvertor(Convertor[str]):
    """Exactly the usernames `USERNAME_PATTERN` admits."""

    regex = "[A-Za-z0-9_-]{3,25}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("chesscom_username", UsernameConvertor())


async def get_player(request: Request) -> Response:
    request.scope["route"] = ROUTE  # FastAPI's router does not say which route it chose
    engine: AsyncEngine = request.app.state.read_engine
    async with engine.connect() as conn:
        row = await service.read_player(conn, request.path_params["username"])
    body = PlayerOut.model_validate(row).model_dump_json()
    return Response(body, media_type="application/json")


ROUTE = Route(
    API_PREFIX + "/players/{username:chesscom_username}",
    get_player,
    methods=["GET"],
    include_in_schema=False,
)
ROUTE.methods = {"GET"}  # Starlette adds HEAD to GET routes; the contract has GET only


def install_fast_read(app: FastAPI) -> None:
    """Put the route first, so that it is tried before the routers."""
    app.router.routes.insert(0, ROUTE)
