"""Render the service's emails (SPEC §7) as ready-to-send ``EmailMessage`` objects.

Everything here is pure: no clock unless no ``date`` is given, no database, no
network. The worker stores the games of a session as JSON in the outbox row
(:class:`GameSummary`) and renders at delivery time, so a retried row renders the
same message with the same deterministic ``Message-ID``.

Two kinds of untrusted text reach these emails: values from Chess.com (names,
usernames, opponents, game URLs) and the subscriber's address. Headers only ever
see values passed through :func:`_header_safe` or parsed as a single address, so
CR/LF cannot inject headers; HTML templates autoescape; links are only written
when they are plain ``http(s)`` URLs.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError, ObsoleteHeaderDefect
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlsplit

import jinja2

LIST_NAME = "Chess.com Helper"
MAX_LISTED_GAMES = 20
TEMPLATES_DIR = Path(__file__).parent / "templates"

# C0/C1 controls (CR, LF, TAB, NUL, ...), Unicode line/paragraph separators and
# bidi overrides (which can disguise text), all of which have no place in a name.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_UNSAFE_URL_CHARS = re.compile(r"[\s<>\"'`\\\x00-\x1f\x7f-\x9f]")

MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1: the hard limit; 78 is only a SHOULD


class _UrlListHeader(UnstructuredHeader):
    """A header holding `<URL>`s (RFC 2369 `List-Unsubscribe`), written on one line.

    The email package folds long unstructured headers at 78 characters and, when a
    token (our token URL) has no place to break, rewrites it as an RFC 2047 encoded
    word, `=?utf-8?q?=3Chttp...?=`, which no mail client reads as a URL: one-click
    unsubscribe would silently not exist. An unfolded line is legal up to 998.
    """

    def fold(self, *, policy: Policy) -> str:
        header = cast(BaseHeader, self)  # the registry mixes BaseHeader in at runtime
        value = str(header)
        if not value.isascii() or len(header.name) + 2 + len(value) > MAX_HEADER_LINE:
            return BaseHeader.fold(header, policy=policy)
        return f"{header.name}: {value}{policy.linesep}"


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("list-unsubscribe", cast(type[BaseHeader], _UrlListHeader))
# The header objects carry their folding with them, so it also holds when aiosmtplib
# flattens the message with a policy of its own.
MESSAGE_POLICY = SMTP.clone(header_factory=_HEADERS)

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


@dataclass(frozen=True, slots=True)
class GameSummary:
    """One finished game of a session, seen from the tracked player's side.

    ``result`` is the player's Chess.com result code (``"win"``, ``"resigned"``,
    ``"agreed"``...) or ``None`` when unknown; ``time_control`` is Chess.com's raw
    string (``"180+2"``, ``"600"``, ``"1/86400"``).
    """

    url: str
    time_class: str
    time_control: str
    opponent: str
    opponent_rating: int | None
    result: str | None
    end_time: datetime

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON dict for the outbox row (``end_time`` as ISO 8601 UTC)."""
        return {
            "url": self.url,
            "time_class": self.time_class,
            "time_control": self.time_control,
            "opponent": self.opponent,
            "opponent_rating": self.opponent_rating,
            "result": self.result,
            "end_time": _as_utc(self.end_time).isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GameSummary:
        """Inverse of :meth:`to_json`; raises ``ValueError`` on a malformed dict."""
        try:
            rating = data.get("opponent_rating")
            result = data.get("result")
            end_time = data["end_time"]
            if isinstance(end_time, int | float) and not isinstance(end_time, bool):
                parsed = datetime.fromtimestamp(end_time, UTC)
            elif isinstance(end_time, str):
                parsed = _as_utc(datetime.fromisoformat(end_time))
            else:
                raise ValueError(f"end_time must be ISO 8601 or Unix seconds: {end_time!r}")
            if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)):
                raise ValueError(f"opponent_rating must be an integer: {rating!r}")
            return cls(
                url=_require_str(data, "url"),
                time_class=_require_str(data, "time_class"),
                time_control=_require_str(data, "time_control"),
                opponent=_require_str(data, "opponent"),
                opponent_rating=rating,
                result=None if result is None else str(result),
                end_time=parsed,
            )
        except KeyError as exc:
            raise ValueError(f"game summary lacks {exc.args[0]!r}") from exc


def render_live_match(
    *,
    to: str,
    sender: str,
    player_username: str,
    player_name: str | None,
    games: Sequence[GameSummary],
    event_id: str,
    row_id: int,
    unsubscribe_url: str,
    public_base_url: str,
    list_domain: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The ``live_match`` notification: the player started a session of live games."""
    username = _required_text(player_username, "player_username")
    name = _header_safe(player_name or "")
    ordered = sorted(games, key=lambda game: _as_utc(game.end_time))
    context: dict[str, Any] = {
        "player_username": username,
        "player_name": name if name and name.lower() != username.lower() else None,
        "profile_url": f"https://www.chess.com/member/{quote(username.lower(), safe='')}",
        "games": [_game_view(game) for game in ordered[:MAX_LISTED_GAMES]],
        "more_games": max(0, len(ordered) - MAX_LISTED_GAMES),
        "public_base_url": _own_url(public_base_url, "public_base_url"),
    }
    domain = _list_domain(list_domain, sender)
    unsubscribe = _own_url(unsubscribe_url, "unsubscribe_url")
    context["unsubscribe_url"] = unsubscribe
    return _build(
        template="live_match",
        context=context,
        to=to,
        sender=sender,
        subject=f"{username} started playing live chess on Chess.com",
        message_id=message_id("notification", row_id, event_id, domain),
        list_domain=domain,
        unsubscribe_url=unsubscribe,
        date=date,
    )


def render_confirmation(
    *,
    to: str,
    sender: str,
    player_username: str,
    confirm_url: str,
    row_id: int,
    list_domain: str | None = None,
    unsubscribe_url: str | None = None,
    event_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The double opt-in email: nothing is sent to this address until it is confirmed."""
    username = _required_text(player_username, "player_username")
    domain = _list_domain(list_domain, sender)
    unsubscribe = None if unsubscribe_url is None else _own_url(unsubscribe_url, "unsubscribe_url")
    return _build(
        template="confirmation",
        context={
            "player_username": username,
            "confirm_url": _own_url(confirm_url, "confirm_url"),
            "unsubscribe_url": unsubscribe,
        },
        to=to,
        sender=sender,
        subject=f"Confirm your subscription to {username}",
        message_id=message_id(
            "confirmation", row_id, event_id or f"confirmation:{username.lower()}", domain
        ),
        list_domain=domain,
        unsubscribe_url=unsubscribe,
        date=date,
    )


def render_erase_confirmation(
    *,
    to: str,
    sender: str,
    erase_url: str,
    row_id: int,
    list_domain: str | None = None,
    event_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """Asks the owner of an address to confirm erasing everything stored about it."""
    domain = _list_domain(list_domain, sender)
    return _build(
        template="erase_confirmation",
        context={"erase_url": _own_url(erase_url, "erase_url")},
        to=to,
        sender=sender,
        subject="Confirm deletion of your data",
        message_id=message_id("erase", row_id, event_id or "erase", domain),
        list_domain=domain,
        unsubscribe_url=None,
        date=date,
    )


def render_manage_link(
    *,
    to: str,
    sender: str,
    manage_url: str,
    valid_days: int,
    row_id: int,
    list_domain: str | None = None,
    event_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The manage link an address asked for (`POST /me/link`, the home page's form)."""
    domain = _list_domain(list_domain, sender)
    return _build(
        template="manage_link",
        context={"manage_url": _own_url(manage_url, "manage_url"), "valid_days": valid_days},
        to=to,
        sender=sender,
        subject="Your link to manage Chess.com Helper emails",
        message_id=message_id("manage", row_id, event_id or "manage", domain),
        list_domain=domain,
        unsubscribe_url=None,
        date=date,
    )


def message_id(kind: str, row_id: int, key: str, list_domain: str) -> str:
    """Deterministic ``Message-ID`` for an outbox row: a resend reuses it, so
    receiving systems can drop a duplicate that slipped through a crash."""
    if isinstance(row_id, bool) or not isinstance(row_id, int) or row_id < 0:
        raise ValueError(f"row_id must be a non-negative integer: {row_id!r}")
    if not re.fullmatch(r"[a-z][a-z0-9-]*", kind):
        raise ValueError(f"bad message kind: {kind!r}")
    digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    return f"<{kind}-{row_id}.{digest}@{_domain(list_domain)}>"


def list_domain_from_sender(sender: str) -> str:
    """The domain of the sender's address (``localhost`` when it has none)."""
    local, at, domain = parseaddr(_header_safe(sender))[1].rpartition("@")
    domain = domain.lower()
    return domain if local and at and _DOMAIN.match(domain) else "localhost"


def format_time_control(time_control: str) -> str:
    """Chess.com's raw time control made readable: ``"180+2"`` → ``"3+2"``,
    ``"600"`` → ``"10 min"``, ``"1/86400"`` → ``"1 day"``; unknown forms pass through."""
    raw = _header_safe(time_control)
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


def describe_result(result: str | None) -> str | None:
    """Human words for a Chess.com result code (unknown codes pass through)."""
    if result is None:
        return None
    cleaned = _header_safe(result)
    return _RESULTS.get(cleaned.lower(), cleaned) or None


def _header_safe(value: str) -> str:
    """Remove CR/LF and every other control character, collapsing what is left
    onto one trimmed line, so the value can never start a new header."""
    return " ".join(_CONTROL_CHARS.sub(" ", value).split())


def _build(
    *,
    template: str,
    context: Mapping[str, Any],
    to: str,
    sender: str,
    subject: str,
    message_id: str,
    list_domain: str,
    unsubscribe_url: str | None,
    date: datetime | None,
) -> EmailMessage:
    env = _environment()
    text = env.get_template(f"{template}.txt").render(context)
    html = env.get_template(f"{template}.html").render(context, subject=_header_safe(subject))
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = _address(sender, "sender")
    message["To"] = _address(to, "to")
    message["Subject"] = _header_safe(subject)
    message["Date"] = format_datetime(_as_utc(date or datetime.now(UTC)))
    message["Message-ID"] = message_id
    message["List-Id"] = f"{LIST_NAME} <notifications.{list_domain}>"
    if unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


@functools.cache
def _environment() -> jinja2.Environment:
    """One Jinja environment per process: HTML autoescaped, text left as is."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _game_view(game: GameSummary) -> dict[str, Any]:
    time_class = _header_safe(game.time_class)
    return {
        "time_class": time_class.capitalize() if time_class else "Game",
        "time_control": format_time_control(game.time_control),
        "opponent": _header_safe(game.opponent) or "unknown opponent",
        "opponent_rating": game.opponent_rating,
        "result": describe_result(game.result),
        "url": _external_url(game.url),
        "ended_at": _as_utc(game.end_time).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _address(value: str, field: str) -> Address:
    """Parse exactly one mailbox; refuse anything that could smuggle a header or
    a second recipient (lists, groups, unparseable junk)."""
    if _CONTROL_CHARS.search(value):
        raise ValueError(f"{field} address contains control characters")
    try:
        header = SMTP.header_factory("To", value)
    except (HeaderParseError, IndexError, ValueError) as exc:
        raise ValueError(f"{field} is not a valid email address: {value!r}") from exc
    groups: tuple[Any, ...] = getattr(header, "groups", ())
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    invalid = [d for d in header.defects if not isinstance(d, ObsoleteHeaderDefect)]
    if (
        invalid
        or len(groups) != 1
        or groups[0].display_name is not None
        or len(addresses) != 1
        or not addresses[0].username
        or not addresses[0].domain
    ):
        raise ValueError(f"{field} is not a single valid email address: {value!r}")
    mailbox = addresses[0]
    return Address(
        display_name=_header_safe(mailbox.display_name),
        username=mailbox.username,
        domain=mailbox.domain,
    )


def _list_domain(list_domain: str | None, sender: str) -> str:
    return _domain(list_domain) if list_domain else list_domain_from_sender(sender)


def _domain(value: str) -> str:
    domain = value.strip().lower()
    if not _DOMAIN.match(domain):
        raise ValueError(f"not a valid list domain: {value!r}")
    return domain


def _own_url(value: str, field: str) -> str:
    """Our own links (unsubscribe, confirm...): malformed means a bug, so raise."""
    url = _external_url(value)
    if url is None:
        raise ValueError(f"{field} must be an absolute http(s) URL: {value!r}")
    return url


def _external_url(value: str) -> str | None:
    """``value`` if it is a plain absolute http(s) URL, else ``None`` (no link)."""
    if not value or _UNSAFE_URL_CHARS.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.hostname else None


def _required_text(value: str, field: str) -> str:
    cleaned = _header_safe(value)
    if not cleaned:
        raise ValueError(f"{field} must not be empty")
    return cleaned


def _require_str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string: {value!r}")
    return value


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _minutes(seconds: int) -> str:
    return str(seconds // 60) if seconds % 60 == 0 else f"{seconds / 60:g}"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
