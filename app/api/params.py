"""Path and query parameters shared by the routers (FastAPI's `Path`/`Query`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from starlette.convertors import Convertor, register_url_convertor

from app.player_keys import KEY_DESCRIPTION
from app.schemas import USERNAME_PATTERN

# A player key wherever a username is accepted (SPEC §4): `hikaru` or `lichess:name`.
UsernamePath = Annotated[
    str,
    Path(
        pattern=USERNAME_PATTERN,
        description=KEY_DESCRIPTION,
        examples=["hikaru", "lichess:drnykterstein"],
    ),
]


class EmailConvertor(Convertor[str]):
    """`{email:email}` in a path: a segment with an `@`, so that a literal sibling such
    as `/subscribers/erase` never reaches the `/subscribers/{email}` route (a DELETE
    there is a 405 naming the sibling's methods, not a 422 about a bad address)."""

    regex = r"[^/@]*@[^/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("email", EmailConvertor())

Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]
