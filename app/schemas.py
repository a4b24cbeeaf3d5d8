"""Shared request/response building blocks (pydantic only: the web framework's path and
query parameters are in app.api.params)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.player_keys import KEY_DESCRIPTION, KEY_PATTERN

T = TypeVar("T")


# What the OpenAPI schema states beside `format: email`: a domain with a dot. A dotless
# domain (`a@b`, `x@localhost`) is well-formed RFC 5321 syntax, yet no public mail
# system delivers to it, so nobody could ever confirm such an address.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL = re.compile(EMAIL_PATTERN)


def canonical_email(value: str) -> str:
    """The one stored form of an address: lower-case, domain in ASCII (IDNA).

    Mail goes out over plain SMTP, where a non-ASCII domain is sent as its ASCII
    (punycode) form and a non-ASCII local part needs SMTPUTF8, which many relays lack.
    So such local parts are refused up front rather than failing silently later, and
    `user@bücher.de` and `user@xn--bcher-kva.de` are one address.

    The check is of syntax (what `format: email` and EMAIL_PATTERN document), plus
    what every deliverable address has: a domain with a dot, ending in a letter.
    Special-use domains such as `.test` pass. Whether an address receives mail is for
    the confirmation email (double opt-in) to find out.
    """
    if "@" in value and "." not in value.rpartition("@")[2]:
        raise ValueError(
            "Not a valid email address: the part after the @ must be a domain name with "
            "a dot, such as example.com"
        )
    try:
        result = validate_email(
            value,
            check_deliverability=False,
            globally_deliverable=True,
            test_environment=True,
            allow_smtputf8=False,
        )
    except EmailNotValidError as exc:
        if not value.split("@", 1)[0].isascii():
            raise ValueError(
                "Addresses with non-ASCII characters before the @ are not supported"
            ) from exc
        raise ValueError(f"Not a valid email address: {exc}") from exc
    address = (result.ascii_email or result.normalized).lower()
    if not _EMAIL.fullmatch(address):  # what the schema promises, whatever the library says
        raise ValueError("Not a valid email address")
    return address


# Wherever a username is accepted, a player key is (SPEC §4): `hikaru` or `lichess:name`.
USERNAME_PATTERN = KEY_PATTERN
USERNAME_HINT = "Enter a Chess.com username (3 to 25 letters, digits, _ or -) or lichess:<name>."

Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=USERNAME_PATTERN, to_lower=True),
    Field(description=KEY_DESCRIPTION, examples=["hikaru", "lichess:drnykterstein"]),
]
# RFC 3339 `date-time`, what OpenAPI's `format: date-time` promises: a date, a time and
# an offset. pydantic alone would also take `0.5` or `1700000000` (Unix time) or a bare date.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-11-27T14:00:00Z")
    return value


DateTime = Annotated[datetime, BeforeValidator(_rfc3339)]


# An address in a body or a parameter: checked, then in its one canonical form.
Email = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(canonical_email),
    Field(
        json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN},
        description="An email address; its domain has a dot (`a@b` is refused).",
        examples=["fan@example.com"],
    ),
]


def with_example(example: dict[str, Any], *, from_attributes: bool = False) -> ConfigDict:
    """A model config whose OpenAPI schema shows `example` (every response model has one)."""
    return ConfigDict(json_schema_extra={"examples": [example]}, from_attributes=from_attributes)


class StrictModel(BaseModel):
    """Request bodies: unknown fields and wrong types are rejected, not ignored."""

    model_config = ConfigDict(extra="forbid", strict=False, str_max_length=1000)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(ge=0)
    limit: int
    offset: int
