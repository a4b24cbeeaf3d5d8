"""The ntfy webhook format (SPEC §11): a message posted to an ntfy topic URL
(`https://ntfy.sh/<topic>` or a self-hosted server) as ntfy's publish API takes it.

The body is plain text, ending with the manage and unsubscribe links; what a phone
shows first goes in ntfy's headers: `Title`, `Click` (opened on a tap: the game, the
stream, or the confirm page), `Tags` (emoji shortcodes) and `Priority: high` (alerts are worth
something for a few minutes). Header values outside ASCII (a player's name) are sent
RFC 2047-encoded, which ntfy decodes; control characters never reach a header.
Like every webhook, a subscription first gets a verification message with the
confirm link, and nothing else until it is confirmed.
"""

from __future__ import annotations

import base64
import re

from app.notifications.payloads import GameRecord, stream_label
from app.player_keys import PLATFORM_NAMES, Platform, PlayerKey
from app.webhooks.payloads import (
    LiveMatchMessage,
    ManageLinkMessage,
    Message,
    StreamMessage,
    VerificationMessage,
    watch_url,
)

FORMAT = "ntfy"  # the webhook `format` value (the JSON formats: payloads.WebhookFormat)
PRIORITY = "high"
TAGS_LIVE = "chess_pawn,red_circle"
TAGS_STREAM = "chess_pawn,movie_camera"
TAGS_NOTICE = "chess_pawn"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_GAMES = 10


def _header(value: str) -> str:
    """A header value: one line, ASCII as is, anything else RFC 2047 (UTF-8, base64)."""
    value = " ".join(_CONTROL.sub(" ", value).split())
    if value.isascii():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def _who(username: str, name: str | None) -> str:
    name = " ".join(_CONTROL.sub(" ", name or "").split())
    return f"{name} ({username})" if name and name.lower() != username.lower() else username


def _game(username: str, game: GameRecord) -> str:
    opponent, rating, _ = game.side(username)
    against = f" vs {opponent}" + (f" ({rating})" if rating else "") if opponent else ""
    control = f"{game.time_control} " if game.time_control else ""
    if game.in_progress:  # seen starting: no opponent yet, the link watches it live
        return f"• {control}{game.time_class}, playing now: {game.url}"
    return f"• {control}{game.time_class}{against}: {game.url}"


def _footer(message: Message) -> list[str]:
    return [
        "",
        f"Manage these alerts: {message.manage_url}",
        f"Unsubscribe: {message.unsubscribe_url}",
    ]


def render(message: Message) -> tuple[bytes, dict[str, str]]:
    """The body and ntfy headers of one message."""
    if isinstance(message, LiveMatchMessage):
        who = _who(message.username, message.player_name)
        games = sorted(message.games, key=lambda g: (g.end_time, g.event_id))[-MAX_GAMES:]
        platform = Platform(message.platform)
        lines = [f"{who} started playing live chess on {PLATFORM_NAMES[platform]}."]
        lines += [_game(message.username, g) for g in games]
        title = f"{who} is playing"
        profile = PlayerKey(platform, message.username.lower()).profile_url
        click = games[-1].url if games else profile
        tags = TAGS_LIVE
    elif isinstance(message, StreamMessage):
        who = _who(message.username, message.player_name)
        where = stream_label(message.stream_type)
        click = watch_url(message)
        title = f"{who} is live on {where}"
        lines = [f"{who} is streaming now on {where}.", f"Watch: {click}"]
        tags = TAGS_STREAM
    elif isinstance(message, VerificationMessage):
        title = f"Confirm alerts about {message.username}"
        lines = [
            f"Someone asked for alerts about {message.username} on this ntfy topic.",
            f"Confirm here: {message.confirm_url}",
            "If that was not you, ignore this message: nothing else is posted.",
        ]
        click, tags = message.confirm_url, TAGS_NOTICE
    elif isinstance(message, ManageLinkMessage):
        title = f"Your alerts about {message.username}"
        lines = [f"The link to manage the alerts of this topic: {message.manage_url}"]
        click, tags = message.manage_url, TAGS_NOTICE
    else:  # pragma: no cover - every message type is handled above
        raise ValueError(f"no ntfy message for {type(message).__name__}")
    body = "\n".join([*lines, *_footer(message)]).encode()
    headers = {
        "content-type": "text/plain; charset=utf-8",
        "title": _header(title),
        "click": _header(click),
        "tags": tags,
        "priority": PRIORITY,
    }
    return body, headers
