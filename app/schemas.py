"""Shared request/response building blocks."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

USERNAME_PATTERN = r"^[A-Za-z0-9_-]{3,25}$"

Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=USERNAME_PATTERN, to_lower=True),
    Field(
        description="A Chess.com username: 3 to 25 letters, digits, '_' or '-'.",
        examples=["hikaru"],
    ),
]
UsernamePath = Annotated[
    str,
    Path(
        pattern=USERNAME_PATTERN,
        description="Chess.com username (case-insensitive)",
        examples=["hikaru"],
    ),
]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]


class StrictModel(BaseModel):
    """Request bodies: unknown fields and wrong types are rejected, not ignored."""

    model_config = ConfigDict(extra="forbid", strict=False, str_max_length=1000)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(ge=0)
    limit: int
    offset: int
