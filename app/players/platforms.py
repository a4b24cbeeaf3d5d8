"""The platforms a player can be tracked on, and how each one's profile is read.

`Platforms` is what tracking needs (SPEC §4): the Chess.com client, and the Lichess
profile reader (client + the shared one-at-a-time gate), built once at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.chesscom.client import ChessComClient
from app.errors import NotFound, UpstreamUnavailable
from app.lichess.client import LichessClient
from app.lichess.errors import LichessError, LichessUserNotFound
from app.lichess.gate import LichessGate
from app.lichess.payloads import LichessUser

LICHESS_UNAVAILABLE = "Lichess cannot be reached right now; try again later"


@dataclass(frozen=True, slots=True)
class LichessProfiles:
    """Reads Lichess accounts for the API, inside the shared gate's turns."""

    client: LichessClient
    gate: LichessGate

    async def fetch(self, username: str) -> LichessUser:
        """The account; NotFound (404) for an unknown one, UpstreamUnavailable (503)
        when Lichess or the gate cannot answer in time."""
        try:
            async with self.gate.turn():
                return await self.client.get_user(username)
        except LichessUserNotFound as exc:
            raise NotFound(f"Lichess has no player named '{username.lower()}'") from exc
        except LichessError as exc:
            raise UpstreamUnavailable(LICHESS_UNAVAILABLE) from exc


@dataclass(frozen=True, slots=True)
class Platforms:
    chesscom: ChessComClient
    lichess: LichessProfiles | None = None

    def lichess_profiles(self) -> LichessProfiles:
        if self.lichess is None:  # a process built without a Lichess reader
            raise UpstreamUnavailable(LICHESS_UNAVAILABLE)
        return self.lichess
