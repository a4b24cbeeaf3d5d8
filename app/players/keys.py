"""Player keys (SPEC §4): how a tracked player is named wherever a username is accepted.

A player is (platform, username). Its *key* is the Chess.com username itself (the
default platform, so every existing path keeps its meaning) or ``lichess:<name>``.
Chess.com usernames never contain ``:``, so the two never collide. Keys are
case-insensitive and stored lower-case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Platform(StrEnum):
    chesscom = "chesscom"
    lichess = "lichess"


CHESSCOM_USERNAME = r"[A-Za-z0-9_-]{3,25}"
LICHESS_USERNAME = r"[A-Za-z0-9_-]{2,30}"
# The one rule, as a regular expression (OpenAPI `pattern`, form checks, fast paths).
KEY_PATTERN = rf"^(?:{CHESSCOM_USERNAME}|lichess:{LICHESS_USERNAME})$"
KEY_DESCRIPTION = (
    "A player key: a Chess.com username (3 to 25 letters, digits, '_' or '-'), or "
    "'lichess:' and a Lichess username (2 to 30 of the same), case-insensitive."
)

_USERNAME = {
    Platform.chesscom: re.compile(CHESSCOM_USERNAME),
    Platform.lichess: re.compile(LICHESS_USERNAME),
}


class InvalidKey(ValueError):
    """Not a player key (a 422 where it came from a request)."""


@dataclass(frozen=True, slots=True)
class PlayerKey:
    platform: Platform
    username: str  # lower-case

    @property
    def key(self) -> str:
        """The canonical key: ``hikaru`` or ``lichess:drnykterstein``."""
        if self.platform is Platform.chesscom:
            return self.username
        return f"{self.platform.value}:{self.username}"

    def __str__(self) -> str:
        return self.key


def parse_key(value: str, platform: Platform | str | None = None) -> PlayerKey:
    """Parse a player key, or a bare username on an explicit `platform`.

    ``hikaru`` → Chess.com; ``lichess:DrNykterstein`` → Lichess ``drnykterstein``;
    ``foo:bar``, ``lichess:``, ``lichess:a`` → :class:`InvalidKey`. A prefixed key
    given with a different explicit platform is refused too.
    """
    text = value.strip()
    prefix, sep, rest = text.partition(":")
    if sep:
        try:
            named = Platform(prefix.lower())
        except ValueError:
            raise InvalidKey(f"unknown platform {prefix!r} in player key {value!r}") from None
        if named is Platform.chesscom:
            raise InvalidKey(f"a Chess.com player is named by its username alone, not {value!r}")
        if platform is not None and Platform(platform) is not named:
            raise InvalidKey(f"player key {value!r} is not on platform {platform!r}")
        chosen: Platform = named
        username = rest
    else:
        chosen, username = Platform(platform or Platform.chesscom), text
    if not _USERNAME[chosen].fullmatch(username):
        raise InvalidKey(f"{username!r} is not a valid {chosen.value} username")
    return PlayerKey(chosen, username.lower())


def key_of(platform: str, username: str) -> str:
    """The key of a stored (platform, username) pair."""
    return PlayerKey(Platform(platform), username.lower()).key
