"""Typed models of the Lichess API answers we read (SPEC Appendix B), and the speed rule.

Unknown fields are ignored (Lichess adds fields without notice); false flags are left
out of Lichess's JSON, so every flag defaults to false.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.player_keys import LICHESS_USERNAME

LICHESS_WEB = "https://lichess.org"
MAX_IDS_PER_REQUEST = 100  # /api/users/status takes at most this many ids

_CLOCK = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*\+\s*(\d+)\s*$")
_GAME_ID = re.compile(r"^[A-Za-z0-9]{8}$")
_USERNAME = re.compile(LICHESS_USERNAME)


def speed_of(clock: str | None) -> str:
    """Lichess's speed of a game from its clock ``"<minutes>+<increment>"``:
    estimated seconds = initial + 40 * increment; under 30 ultraBullet, under 180
    bullet, under 480 blitz, under 1500 rapid, else classical; no clock (or one we
    cannot read) = correspondence."""
    match = _CLOCK.match(clock or "")
    if match is None:
        return "correspondence"
    initial = float(match[1]) * 60
    estimate = initial + 40 * int(match[2])
    for limit, speed in ((30, "ultraBullet"), (180, "bullet"), (480, "blitz"), (1500, "rapid")):
        if estimate < limit:
            return speed
    return "classical"


def time_class_of(speed: str) -> str:
    """The time class subscribers filter on: ``ultraBullet`` counts as ``bullet``,
    ``correspondence`` is the daily of Lichess (never live)."""
    return {"ultraBullet": "bullet", "correspondence": "daily"}.get(speed, speed)


def game_url(game_id: str) -> str:
    """Where a game is watched live."""
    return f"{LICHESS_WEB}/{game_id}"


def streamer_url(username: str) -> str:
    """Lichess's page of a streamer (the status API names no stream URL)."""
    return f"{LICHESS_WEB}/streamer/{username}"


def player_url(username: str) -> str:
    return f"{LICHESS_WEB}/@/{username}"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class GameMeta(_Payload):
    """``playing`` with ``withGameMetas=true``: the game being played."""

    id: str
    clock: str | None = None
    variant: str = "standard"

    @field_validator("id")
    @classmethod
    def _game_id(cls, value: str) -> str:
        if not _GAME_ID.match(value):
            raise ValueError(f"not a Lichess game id: {value!r}")
        return value

    @property
    def speed(self) -> str:
        return speed_of(self.clock)


class UserStatus(_Payload):
    """One entry of ``/api/users/status``."""

    id: str
    name: str = ""
    title: str | None = None
    online: bool = False
    # With withGameMetas the game; older answers (or withGameIds off) say just `true`.
    playing: GameMeta | bool | None = None
    streaming: bool = False

    @field_validator("id")
    @classmethod
    def _user_id(cls, value: str) -> str:
        if not _USERNAME.fullmatch(value):
            raise ValueError(f"not a Lichess user id: {value!r}")
        return value.lower()

    @property
    def game(self) -> GameMeta | None:
        return self.playing if isinstance(self.playing, GameMeta) else None


class Statuses(_Payload):
    """The whole answer (a JSON array), validated as one: garbage anywhere refuses it."""

    items: list[UserStatus]


class LichessProfileText(_Payload):
    real_name: str | None = Field(default=None, alias="realName")
    location: str | None = None
    flag: str | None = None
    country: str | None = None


class LichessUser(_Payload):
    """``/api/user/{username}``: the public account."""

    id: str
    username: str
    title: str | None = None
    created_at: int | None = Field(default=None, alias="createdAt")  # Unix milliseconds
    seen_at: int | None = Field(default=None, alias="seenAt")
    profile: LichessProfileText | None = None
    disabled: bool = False
    tos_violation: bool = Field(default=False, alias="tosViolation")
    url: str | None = None
    playing: str | None = None  # URL of the game being played
    streaming: bool = False
    patron: bool = False
    verified: bool = False
    count: dict[str, Any] = Field(default_factory=dict)

    @property
    def closed(self) -> bool:
        """A closed or banned account is tracked but never polled."""
        return self.disabled or self.tos_violation
