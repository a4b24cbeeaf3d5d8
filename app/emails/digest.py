"""The daily digest email (issue 12): one address's sessions since its previous digest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from app.emails.render import (
    MAX_LISTED_GAMES,
    GameSummary,
    _build,
    _game_view,
    _list_domain,
    _own_url,
    message_id,
)


@dataclass(frozen=True, slots=True)
class DigestSession:
    username: str
    name: str | None
    started_at: datetime
    games: Sequence[GameSummary]


def render_digest(
    *,
    to: str,
    sender: str,
    local_date: str,
    timezone: str,
    sessions: Sequence[DigestSession],
    manage_url: str,
    unsubscribe_all_url: str,
    public_base_url: str,
    row_id: int,
    event_id: str,
    list_domain: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """Times are shown in the address's own time zone. `List-Unsubscribe` (one-click) ends
    every subscription of the address: a digest is about all of them."""
    zone = ZoneInfo(timezone)
    views = []
    for s in sessions:
        ordered = sorted(s.games, key=lambda g: g.end_time)
        views.append(
            {
                "username": s.username,
                "name": s.name if s.name and s.name.lower() != s.username.lower() else None,
                "started": s.started_at.astimezone(zone).strftime("%H:%M %Z"),
                "games": [_game_view(g) for g in ordered[:MAX_LISTED_GAMES]],
                "more_games": max(0, len(ordered) - MAX_LISTED_GAMES),
            }
        )
    domain = _list_domain(list_domain, sender)
    count = len(views)
    return _build(
        template="digest",
        context={
            "local_date": local_date,
            "sessions": views,
            "manage_url": _own_url(manage_url, "manage_url"),
            "public_base_url": _own_url(public_base_url, "public_base_url"),
        },
        to=to,
        sender=sender,
        subject=f"Your Chess.com Helper digest for {local_date}: "
        f"{count} {'session' if count == 1 else 'sessions'}",
        message_id=message_id("digest", row_id, event_id, domain),
        list_domain=domain,
        unsubscribe_url=_own_url(unsubscribe_all_url, "unsubscribe_all_url"),
        date=date,
    )
