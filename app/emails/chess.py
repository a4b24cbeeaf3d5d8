"""Chess formatting for messages: time controls, results, one game as its reader sees it."""

from __future__ import annotations

import re
from typing import Any

from app.emails.headers import external_url, header_safe
from app.notifications.payloads import GameRecord

_RESULTS = {
    "win": "Won",
    "checkmated": "Lost by checkmate",
    "resigned": "Lost by resignation",
    "timeout": "Lost on time",
    "abandoned": "Lost (abandoned)",
    "lose": "Lost",
    "kingofthehill": "Lost (opponent's king reached the hill)",
    "threecheck": "Lost (three-check)",
    "bughousepartnerlose": "Lost (bughouse partner lost)",
    "agreed": "Draw by agreement",
    "repetition": "Draw by repetition",
    "stalemate": "Draw by stalemate",
    "insufficient": "Draw (insufficient material)",
    "50move": "Draw (50-move rule)",
    "timevsinsufficient": "Draw (timeout vs. insufficient material)",
}


def format_time_control(time_control: str) -> str:
    """Chess.com's raw time control made readable: ``"180+2"`` → ``"3+2"``,
    ``"600"`` → ``"10 min"``, ``"1/86400"`` → ``"1 day"``; unknown forms pass through."""
    raw = header_safe(time_control)
    daily = re.fullmatch(r"1/(\d+)", raw)
    if daily:
        seconds = int(daily.group(1))
        if seconds and seconds % 86400 == 0:
            return _plural(seconds // 86400, "day")
        if seconds and seconds % 3600 == 0:
            return _plural(seconds // 3600, "hour")
        return raw
    live = re.fullmatch(r"(\d+)(?:\+(\d+))?", raw)
    if not live:
        return raw
    base, increment = int(live.group(1)), live.group(2)
    if increment is None:
        if base >= 60 and base % 30 == 0:
            return f"{_minutes(base)} min"
        return f"{base} sec"
    base_text = _minutes(base) if base % 30 == 0 and base else f"{base}s"
    return f"{base_text}+{int(increment)}"


def game_time_control(game: GameRecord) -> str:
    """A game's time control as its reader sees it. A game seen starting (Lichess) carries
    Lichess's clock, already in minutes (``3+2``); an archive game Chess.com's seconds."""
    if game.in_progress:
        return header_safe(game.time_control)
    return format_time_control(game.time_control)


def describe_result(result: str | None) -> str | None:
    """Human words for a Chess.com result code (unknown codes pass through)."""
    if result is None:
        return None
    cleaned = header_safe(result)
    return _RESULTS.get(cleaned.lower(), cleaned) or None


def game_view(game: GameRecord, username: str) -> dict[str, Any]:
    """One game as the templates show it, from the tracked player's side."""
    opponent, rating, result = game.side(username)
    time_class = header_safe(game.time_class)
    return {
        "time_class": time_class.capitalize() if time_class else "Game",
        "time_control": game_time_control(game),
        "opponent": header_safe(opponent) or "unknown opponent",
        "opponent_rating": rating,
        "result": describe_result(result),
        "url": external_url(game.url),
        "ended_at": game.ended_at.strftime("%Y-%m-%d %H:%M UTC"),
        # A game seen starting (Lichess): no opponent or result yet, a link to watch it.
        "in_progress": game.in_progress,
    }


def _minutes(seconds: int) -> str:
    return str(seconds // 60) if seconds % 60 == 0 else f"{seconds / 60:g}"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
