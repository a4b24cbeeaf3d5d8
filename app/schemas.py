"""Shared request/response building blocks."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from email_validator import EmailNotValidError, validate_email
from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")


def canonical_email(value: str) -> str:
    """The one stored form of an address: lower-case, domain in ASCII (IDNA).

    Mail goes out over plain SMTP, where a non-ASCII domain is sent as its ASCII
    (punycode) form and a non-ASCII local part needs SMTPUTF8, which many relays lack.
    So such local parts are refused up front rather than failing silently later, and
    `user@bücher.de` and `user@xn--bcher-kva.de` are one address.
    """
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        if not value.split("@", 1)[0].isascii():
            raise ValueError(
                "Addresses with non-ASCII characters before the @ are not supported"
            ) from exc
        raise ValueError(f"Not a valid email address: {exc}") from exc
    return (result.ascii_email or result.normalized).lower()


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
