"""What a short alert says, for the channels that show a few lines on a phone (Web Push,
Telegram, ntfy): a headline, detail lines, one link to open and what it is called.
Rendered once per event; pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.notifications.payloads import GameRecord, LiveSession

MAX_GAMES = 5


@dataclass(frozen=True, slots=True)
class Alert:
    player_key: str  # one Topic / tag per player
    headline: str
    lines: tuple[str, ...]
    url: str  # the game, the stream or the player's page
    url_label: str

    @property
    def title(self) -> str:
        return self.headline

    @property
    def body(self) -> str:
        return "\n".join(self.lines)


def _game_line(game: GameRecord, username: str) -> str:
    opponent, rating, _result = game.side(username)
    control = f"{game.time_control} " if game.time_control else ""
    rated = "rated " if game.rated else ""
    against = f" vs {opponent}" + (f" ({rating})" if rating else "") if opponent else ""
    return f"{control}{rated}{game.time_class}{against}".strip()


def _session(session: LiveSession, player_key: str, public_url: str) -> Alert:
    who = session.name or session.username
    where = "Lichess" if player_key.startswith("lichess:") else "Chess.com"
    games: Sequence[GameRecord] = session.games[-MAX_GAMES:]
    lines = tuple(_game_line(g, session.username) for g in games)
    if session.games:
        return Alert(player_key, f"{who} is playing on {where}", lines, session.games[-1].url,
                     "Watch the game")  # fmt: skip
    page = f"{public_url.rstrip('/')}/p/{player_key}"  # the player's page (SPEC §12)
    return Alert(player_key, f"{who} is playing on {where}", lines, page, "Open the player's page")


def _stream(payload: Any, player_key: str) -> Alert | None:
    url = getattr(payload, "stream_url", None)
    username = getattr(payload, "username", None)
    if not isinstance(url, str) or not isinstance(username, str):
        return None
    who = getattr(payload, "name", None) or username
    kind = getattr(payload, "stream_type", None) or getattr(payload, "platform", None) or ""
    lines = (f"Live on {str(kind).capitalize()}",) if kind else ()
    return Alert(player_key, f"{who} is streaming now", lines, url, "Watch the stream")


def alert_for(event: Any, public_url: str) -> Alert | None:
    """The alert of an event (its ``kind`` and typed ``payload``); None for events that
    are not alerts (confirmations, digests...)."""
    payload = event.payload
    username = getattr(payload, "username", None) or getattr(event, "player_username", None) or ""
    player_key = getattr(payload, "key", None) or username.lower()
    if getattr(payload, "platform", None) == "lichess" and ":" not in player_key:
        player_key = f"lichess:{player_key}"
    if event.kind == "live_match" and isinstance(payload, LiveSession):
        return _session(payload, player_key, public_url)
    if event.kind == "stream_started":
        return _stream(payload, player_key)
    return None
