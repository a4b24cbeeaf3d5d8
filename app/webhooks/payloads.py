"""Webhook bodies for Discord, Slack and the signed JSON event (SPEC §9, §10). Pure: no I/O.

A message is rendered at delivery time from the outbox row, like an email, so every
attempt of one row posts the same message under the same ``webhook-id`` (its signed
links, and the Standard Webhooks timestamp and signature, are made afresh). Every
message carries the manage link (pause, filters: app.subscriptions.webhook_manage) and the
unsubscribe link.

Alerts are of two kinds: a session (games, on Chess.com or Lichess; a Lichess game is
announced as it starts, with its watch link) and a stream (the live platform's URL).

Untrusted text (names and usernames from the platforms) is escaped for the target's
markup, links are written only when they are plain http(s) URLs, and Discord is told
to ping nobody whatever the text says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import quote

from app.emails.chess import describe_result, game_time_control
from app.notifications.payloads import GameRecord, stream_label
from app.player_keys import PLATFORM_NAMES, Platform, PlayerKey
from app.urls import plain_http_url
from app.webhooks.events import (
    EventGame,
    EventLinks,
    EventPlayer,
    EventStream,
    LiveMatchData,
    LiveMatchEvent,
    ManageLinkData,
    ManageLinkEvent,
    StreamData,
    StreamStartedEvent,
    VerificationData,
    VerificationEvent,
    VerificationLinks,
)

BOT_NAME = "Chess.com Helper"
DISCORD_MAX_EMBEDS = 10
SLACK_MAX_GAMES = 20  # 50 blocks at most: a header, one block per game, the footer

COLOURS = {"win": 0x2E7D32, "loss": 0xC62828, "draw": 0x757575, None: 0x81B64C}
STREAM_COLOUR = 0x9146FF
_DRAWS = {
    "agreed",
    "repetition",
    "stalemate",
    "insufficient",
    "50move",
    "timevsinsufficient",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
# app.urls.UNSAFE_URL_CHARS and `|`, which ends a link inside Slack's `<url|text>` markup.
_UNSAFE_URL = re.compile(r"[\s<>\"'`|\\\x00-\x1f\x7f-\x9f]")
_DISCORD_MARKUP = re.compile(r"([\\*_~`|>\[\]()#@:<-])")


class WebhookFormat(StrEnum):
    discord = "discord"
    slack = "slack"
    json = "json"
    # (ntfy, the fourth format, posts plain text and headers: app.webhooks.ntfy)


@dataclass(frozen=True, slots=True)
class LiveMatchMessage:
    username: str
    player_name: str | None
    games: Sequence[GameRecord]
    event_id: str
    occurred_at: datetime
    unsubscribe_url: str
    manage_url: str
    platform: str = Platform.chesscom  # the player's platform


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """A ``stream_started`` alert: the player went live; where to watch it (SPEC §10)."""

    username: str
    player_name: str | None
    platform: str  # the player's platform
    stream_type: str  # twitch, youtube, kick, lichess...
    stream_url: str | None  # None: the player's profile stands in
    event_id: str
    occurred_at: datetime  # when the stream was seen going live
    unsubscribe_url: str
    manage_url: str


@dataclass(frozen=True, slots=True)
class VerificationMessage:
    username: str
    confirm_url: str
    unsubscribe_url: str
    occurred_at: datetime
    manage_url: str
    platform: str = Platform.chesscom  # the player's platform


@dataclass(frozen=True, slots=True)
class ManageLinkMessage:
    """The webhook's manage link, posted when someone subscribes it again (app.webhooks.
    subscriptions): the way back to its controls once older messages are gone."""

    username: str
    unsubscribe_url: str
    occurred_at: datetime
    manage_url: str
    platform: str = Platform.chesscom  # the player's platform


Message = LiveMatchMessage | StreamMessage | VerificationMessage | ManageLinkMessage


Outcome = Literal["win", "loss", "draw"]


def outcome(result: str | None) -> Outcome | None:
    """``win``, ``loss`` or ``draw`` from the player's Chess.com result code."""
    if result is None:
        return None
    code = result.strip().lower()
    if code == "win":
        return "win"
    return "draw" if code in _DRAWS else "loss"


def render_body(fmt: WebhookFormat | str, message: Message) -> bytes:
    """The exact bytes to post for one message in one format."""
    renderers = {
        WebhookFormat.discord: _discord,
        WebhookFormat.slack: _slack,
        WebhookFormat.json: _json_event,
    }
    body = renderers[WebhookFormat(fmt)](message)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# -- shared helpers -----------------------------------------------------------------


def _clean(value: str | None) -> str:
    return " ".join(_CONTROL.sub(" ", value or "").split())


def _url(value: str | None) -> str | None:
    """``value`` if it is a plain absolute http(s) URL (safe inside any markup)."""
    return plain_http_url(value, _UNSAFE_URL)


def _own_url(value: str) -> str:
    url = _url(value)
    if url is None:
        raise ValueError(f"not an absolute http(s) URL: {value!r}")
    return url


def _profile_url(username: str, platform: str = Platform.chesscom) -> str:
    return PlayerKey(Platform(platform), quote(username.lower(), safe="")).profile_url


def _where(platform: str) -> str:
    return PLATFORM_NAMES[Platform(platform)]


def watch_url(message: StreamMessage) -> str:
    """The stream's URL; the player's profile when the list named none (never a bad link)."""
    return _url(message.stream_url) or _profile_url(message.username, message.platform)


def _ordered(games: Sequence[GameRecord]) -> list[GameRecord]:
    return sorted(games, key=lambda g: (g.end_time, g.event_id))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z")


def _display(username: str, name: str | None) -> str:
    name = _clean(name)
    return f"{name} ({username})" if name and name.lower() != username.lower() else username


def _rating(rating: int | None) -> str:
    return f" ({rating})" if rating is not None else ""


def _time_control(game: GameRecord) -> str:
    return f"{game_time_control(game)} ({_clean(game.time_class) or 'live'})"


def _game_label(game: GameRecord, platform: str) -> str:
    return f"{'Watch live' if game.in_progress else 'View'} on {_where(platform)}"


# -- Discord ------------------------------------------------------------------------


def _md(value: str) -> str:
    """Discord markdown escaped, so a name cannot format, link or mention."""
    return _DISCORD_MARKUP.sub(r"\\\1", _clean(value))


def _discord_game(
    username: str, name: str | None, game: GameRecord, platform: str
) -> dict[str, Any]:
    author = {"name": _display(username, name)[:256], "url": _profile_url(username, platform)}
    time_class = _clean(game.time_class).capitalize() or "Live"
    if game.in_progress:  # seen starting: no opponent, no result yet
        embed: dict[str, Any] = {
            "title": f"{time_class} game, playing now"[:256],
            "color": COLOURS[None],
            "author": author,
            "fields": [
                {"name": "Time control", "value": _md(_time_control(game))[:1024], "inline": True},
                {"name": "Watch", "value": _md(_game_label(game, platform)), "inline": True},
            ],
            "timestamp": _iso(game.ended_at),
        }
        if (url := _url(game.url)) is not None:
            embed["url"] = url
        return embed
    opponent, rating, result = game.side(username)
    opponent = _clean(opponent) or "unknown opponent"
    embed = {
        "title": f"{time_class} game vs {opponent}"[:256],
        "color": COLOURS[outcome(result)],
        "author": author,
        "fields": [
            {"name": "Time control", "value": _md(_time_control(game))[:1024], "inline": True},
            {"name": "Opponent", "value": _md(opponent + _rating(rating))[:1024], "inline": True},
            {
                "name": "Result",
                "value": _md(describe_result(result) or "unknown")[:1024],
                "inline": True,
            },
        ],
        "timestamp": _iso(game.ended_at),
    }
    if (url := _url(game.url)) is not None:
        embed["url"] = url
    return embed


def _what(who: str, platform: str) -> str:
    """What a subscription is about (its events: sessions, streams or both)."""
    return f"{who} starts playing live chess on {_where(platform)} or goes live on stream"


def _manage_text(who: str, platform: str) -> str:
    return (
        f"This channel gets alerts when {_what(who, platform)}. "
        "Someone subscribed it again, so here is the link to its settings: pause, resume, "
        "choose the games, or unsubscribe."
    )


def _discord_links(message: Message) -> str:
    manage, unsubscribe = _own_url(message.manage_url), _own_url(message.unsubscribe_url)
    return f"Pause or change filters: <{manage}> · Unsubscribe: <{unsubscribe}>"


def _discord(message: Message) -> dict[str, Any]:
    links = _discord_links(message)
    who = _md(message.username)
    body: dict[str, Any] = {"username": BOT_NAME, "allowed_mentions": {"parse": []}}
    if isinstance(message, VerificationMessage):
        body["content"] = (
            f"Someone asked for alerts in this channel when {_what(f'**{who}**', message.platform)}"
            f". To start them, open {_own_url(message.confirm_url)} and "
            f"press the button. Nothing more is posted here until then.\n{links}"
        )
        return body
    if isinstance(message, ManageLinkMessage):
        body["content"] = f"{_manage_text(_md(message.username), message.platform)}\n{links}"
        return body
    who = _md(_display(message.username, message.player_name))
    if isinstance(message, StreamMessage):
        url = watch_url(message)
        where = stream_label(message.stream_type)
        body["content"] = f"**{who}** is live on {_md(where)}: <{url}>\n{links}"
        body["embeds"] = [
            {
                "title": f"Live on {where}"[:256],
                "url": url,
                "color": STREAM_COLOUR,
                "author": {
                    "name": _display(message.username, message.player_name)[:256],
                    "url": _profile_url(message.username, message.platform),
                },
                "description": _md(f"Watch the stream: {url}")[:4096],
                "timestamp": _iso(message.occurred_at),
            }
        ]
        return body
    games = _ordered(message.games)
    shown = games[-DISCORD_MAX_EMBEDS:]
    more = f" (the last {len(shown)} of {len(games)} games)" if len(shown) < len(games) else ""
    profile = _profile_url(message.username, message.platform)
    body["content"] = (
        f"**{who}** started playing live chess on {_where(message.platform)}{more}: "
        f"<{profile}>\n{links}"
    )
    body["embeds"] = [
        _discord_game(message.username, message.player_name, g, message.platform) for g in shown
    ]
    return body


# -- Slack --------------------------------------------------------------------------


def _mrkdwn(value: str) -> str:
    """Slack's three control characters escaped (https://api.slack.com/reference/surfaces/formatting)."""
    return _clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str | None, text: str) -> str:
    return f"<{url}|{_mrkdwn(text)}>" if url else _mrkdwn(text)


def _slack_game(username: str, game: GameRecord, platform: str) -> dict[str, Any]:
    control = {"type": "mrkdwn", "text": f"*Time control*\n{_mrkdwn(_time_control(game))}"}
    link = {
        "type": "mrkdwn",
        "text": f"*Game*\n{_slack_link(_url(game.url), _game_label(game, platform))}",
    }
    if game.in_progress:  # seen starting: no opponent, no result yet
        playing = {"type": "mrkdwn", "text": "*Result*\nPlaying now"}
        return {"type": "section", "fields": [control, playing, link]}
    opponent, rating, result = game.side(username)
    opponent = _clean(opponent) or "unknown opponent"
    return {
        "type": "section",
        "fields": [
            control,
            {
                "type": "mrkdwn",
                "text": f"*Opponent*\n{_slack_link(_profile_url(opponent, platform), opponent)}"
                + _rating(rating),
            },
            {
                "type": "mrkdwn",
                "text": f"*Result*\n{_mrkdwn(describe_result(result) or 'unknown')}",
            },
            link,
        ],
    }


def _slack_footer(message: Message) -> dict[str, Any]:
    manage, unsubscribe = _own_url(message.manage_url), _own_url(message.unsubscribe_url)
    text = f"{BOT_NAME} · <{manage}|Pause or change filters> · <{unsubscribe}|Unsubscribe>"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _slack(message: Message) -> dict[str, Any]:
    if isinstance(message, VerificationMessage):
        confirm = _own_url(message.confirm_url)
        text = (
            "Someone asked for alerts in this channel when "
            f"{_what(_mrkdwn(message.username), message.platform)}."
        )
        return {
            "text": f"{text} Confirm: {confirm}",
            "unfurl_links": False,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"<{confirm}|Open the confirmation page> and press its button. "
                        "Nothing more is posted here until then.",
                    },
                },
                _slack_footer(message),
            ],
        }
    if isinstance(message, ManageLinkMessage):
        text = _manage_text(_mrkdwn(message.username), message.platform)
        manage = _own_url(message.manage_url)
        return {
            "text": f"{text} {manage}",
            "unfurl_links": False,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                _slack_footer(message),
            ],
        }
    who = _display(message.username, message.player_name)
    profile = _profile_url(message.username, message.platform)
    if isinstance(message, StreamMessage):
        url = watch_url(message)
        where = stream_label(message.stream_type)
        headline = f"{_slack_link(profile, who)} is live on {_mrkdwn(where)}"
        return {
            "text": f"{_mrkdwn(who)} is live on {_mrkdwn(where)}: {url}",
            "unfurl_links": False,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _slack_link(url, "Watch the stream")},
                },
                _slack_footer(message),
            ],
        }
    games = _ordered(message.games)[-SLACK_MAX_GAMES:]
    where = _where(message.platform)
    headline = f"{_slack_link(profile, who)} started playing live chess on {where}"
    return {
        "text": f"{_mrkdwn(who)} started playing live chess on {where}",
        "unfurl_links": False,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            *(_slack_game(message.username, g, message.platform) for g in games),
            _slack_footer(message),
        ],
    }


# -- JSON (Standard Webhooks) -------------------------------------------------------


def _player(username: str, name: str | None, platform: str = Platform.chesscom) -> EventPlayer:
    key = PlayerKey(Platform(platform), username.lower())
    return EventPlayer(
        username=username,
        name=_clean(name) or None,
        profile_url=_profile_url(username, platform),
        platform=key.platform.value,
        key=key.key,
    )


def _event_game(username: str, game: GameRecord) -> EventGame:
    if game.in_progress:
        return EventGame(
            url=game.url,
            time_class=game.time_class,
            time_control=game.time_control,
            in_progress=True,
            end_time=game.ended_at,
        )
    opponent, rating, result = game.side(username)
    return EventGame(
        url=game.url,
        time_class=game.time_class,
        time_control=game.time_control,
        opponent=opponent,
        opponent_rating=rating,
        result=result,
        outcome=outcome(result),
        end_time=game.ended_at,
    )


def _json_event(message: Message) -> dict[str, Any]:
    unsubscribe, manage = _own_url(message.unsubscribe_url), _own_url(message.manage_url)
    event: LiveMatchEvent | StreamStartedEvent | VerificationEvent | ManageLinkEvent
    if isinstance(message, StreamMessage):
        event = StreamStartedEvent(
            timestamp=_utc(message.occurred_at),
            data=StreamData(
                event_id=message.event_id,
                player=_player(message.username, message.player_name, message.platform),
                stream=EventStream(type=message.stream_type, url=watch_url(message)),
                started_at=_utc(message.occurred_at),
                links=EventLinks(unsubscribe=unsubscribe, manage=manage),
            ),
        )
    elif isinstance(message, ManageLinkMessage):
        event = ManageLinkEvent(
            timestamp=_utc(message.occurred_at),
            data=ManageLinkData(
                player=_player(message.username, None, message.platform),
                links=EventLinks(unsubscribe=unsubscribe, manage=manage),
            ),
        )
    elif isinstance(message, VerificationMessage):
        event = VerificationEvent(
            timestamp=_utc(message.occurred_at),
            data=VerificationData(
                player=_player(message.username, None, message.platform),
                links=VerificationLinks(
                    unsubscribe=unsubscribe, manage=manage, confirm=_own_url(message.confirm_url)
                ),
            ),
        )
    else:
        event = LiveMatchEvent(
            timestamp=_utc(message.occurred_at),
            data=LiveMatchData(
                event_id=message.event_id,
                player=_player(message.username, message.player_name, message.platform),
                games=[_event_game(message.username, g) for g in _ordered(message.games)],
                links=EventLinks(unsubscribe=unsubscribe, manage=manage),
            ),
        )
    data: dict[str, Any] = event.model_dump(mode="json")
    return data
