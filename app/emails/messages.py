"""What each notification type says: one table entry per type (SPEC §7).

An entry names its templates, subject, shared context, the per-recipient links it
carries (each a signed token of one purpose) and whether a recipient still wants it.
Delivery looks the type up here and never branches on it; a new kind of message is a
new entry (and its templates).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from app.emails.chess import game_view
from app.emails.digest import digest_context, digest_subject
from app.emails.headers import (
    external_url,
    list_domain_from_sender,
    list_id,
    own_url,
    required_text,
)
from app.emails.render import PreparedMessage
from app.models import NotificationType
from app.notifications.payloads import LiveSession, Payload, StreamStarted
from app.notifications.payloads import stream_label as payload_stream_label
from app.player_keys import PLATFORM_NAMES, Platform, PlayerKey
from app.tokens import Purpose, TokenSigner
from app.urls import link_url, manage_url, unsubscribe_all_url

MAX_LISTED_GAMES = 20


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What every recipient of one event shares."""

    kind: str
    key: str  # the event's own id: a session's first game, a request's random id
    payload: Payload
    player_username: str | None = None
    player_name: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """One outbox row's recipient, as the claim found it."""

    subscription_id: int
    email: str
    is_active: bool
    confirmed: bool


@dataclass(frozen=True, slots=True)
class Site:
    """What messages take from the settings."""

    sender: str
    public_url: str
    list_domain: str | None = None
    manage_link_days: int = 30  # how long a manage link works (its token's max age)

    @property
    def domain(self) -> str:
        return self.list_domain or list_domain_from_sender(self.sender)


@dataclass(frozen=True, slots=True)
class MessageSpec:
    template: str
    message_kind: str  # the Message-ID's prefix
    subject: Callable[[EventFacts], str]
    context: Callable[[EventFacts, Site], dict[str, Any]]
    links: Mapping[str, Purpose]  # template variable -> the purpose of its signed token
    list_unsubscribe: str | None  # the link that also goes in List-Unsubscribe
    wanted: Callable[[Recipient], bool]  # False: the row is dropped as skipped
    per_player_list: bool = True  # List-Id of the event's player (else the service's)
    # Links made from the signed ones (template variable -> how), e.g. the digest's
    # one-click "unsubscribe from everything" is a form target of its manage link.
    derived_links: Mapping[str, tuple[str, Callable[[str], str]]] = field(default_factory=dict)


def _live_session(facts: EventFacts) -> LiveSession:
    if not isinstance(facts.payload, LiveSession):
        raise ValueError(f"a live_match event needs a live-session payload, not {facts.payload!r}")
    return facts.payload


def _player(facts: EventFacts) -> str:
    if isinstance(facts.payload, LiveSession | StreamStarted):
        return required_text(facts.payload.username, "player_username")
    return required_text(facts.player_username or "", "player_username")




def _platform(facts: EventFacts) -> Platform:
    payload = facts.payload
    raw = payload.platform if isinstance(payload, LiveSession | StreamStarted) else "chesscom"
    return Platform(raw)


def _profile_url(platform: Platform, username: str) -> str:
    return PlayerKey(platform, quote(username.lower(), safe="")).profile_url


def _live_match_context(facts: EventFacts, site: Site) -> dict[str, Any]:
    session = _live_session(facts)
    username = _player(facts)
    platform = _platform(facts)
    name = required_text(session.name or username, "player_name")
    games = sorted(session.games, key=lambda g: (g.end_time, g.event_id))
    return {
        "player_username": username,
        "player_name": name if name.lower() != username.lower() else None,
        "platform_name": PLATFORM_NAMES[platform],
        "profile_url": _profile_url(platform, username),
        "games": [game_view(game, username) for game in games[:MAX_LISTED_GAMES]],
        "more_games": max(0, len(games) - MAX_LISTED_GAMES),
        "public_base_url": own_url(site.public_url, "public_base_url"),
    }


def _stream(facts: EventFacts) -> StreamStarted:
    if not isinstance(facts.payload, StreamStarted):
        raise ValueError(f"a stream event needs a stream payload, not {facts.payload!r}")
    return facts.payload


def _stream_context(facts: EventFacts, site: Site) -> dict[str, Any]:
    """A stream's message: who went live, and where to watch (the live platform's URL)."""
    stream = _stream(facts)
    username = _player(facts)
    platform = _platform(facts)
    name = required_text(stream.name or username, "player_name")
    return {
        "player_username": username,
        "player_name": name if name.lower() != username.lower() else None,
        "platform_name": PLATFORM_NAMES[platform],
        "stream_type": stream_label(stream.stream.type),
        "stream_url": external_url(stream.stream.url or _profile_url(platform, username)),
        "profile_url": _profile_url(platform, username),
        "public_base_url": own_url(site.public_url, "public_base_url"),
    }


def stream_label(kind: str) -> str:
    """`twitch` → Twitch, `youtube` → YouTube, ... (app.notifications.payloads.stream_label),
    checked fit for a header (the subject names it)."""
    return required_text(payload_stream_label(kind), "stream_type")


MESSAGES: dict[str, MessageSpec] = {
    NotificationType.live_match: MessageSpec(
        template="live_match",
        message_kind="notification",
        subject=lambda facts: (
            f"{_player(facts)} started playing live chess on {PLATFORM_NAMES[_platform(facts)]}"
        ),
        context=_live_match_context,
        links={"unsubscribe_url": Purpose.unsubscribe, "manage_url": Purpose.manage},
        list_unsubscribe="unsubscribe_url",
        wanted=lambda r: r.is_active and r.confirmed,
    ),
    NotificationType.stream_started: MessageSpec(
        template="stream_started",
        message_kind="stream",
        subject=lambda facts: (
            f"{_player(facts)} is live on {stream_label(_stream(facts).stream.type)}"
        ),
        context=_stream_context,
        links={"unsubscribe_url": Purpose.unsubscribe, "manage_url": Purpose.manage},
        list_unsubscribe="unsubscribe_url",
        wanted=lambda r: r.is_active and r.confirmed,
    ),
    NotificationType.confirmation: MessageSpec(
        template="confirmation",
        message_kind="confirmation",
        subject=lambda facts: f"Confirm your subscription to {_player(facts)}",
        context=lambda facts, _: {"player_username": _player(facts), "unsubscribe_url": None},
        links={"confirm_url": Purpose.confirm, "manage_url": Purpose.manage},
        list_unsubscribe=None,
        wanted=lambda r: not (r.is_active and r.confirmed),
    ),
    NotificationType.erase_request: MessageSpec(
        template="erase_confirmation",
        message_kind="erase",
        subject=lambda _: "Confirm deletion of your data",
        context=lambda facts, _: {},
        links={"erase_url": Purpose.erase, "manage_url": Purpose.manage},
        list_unsubscribe=None,
        wanted=lambda _: True,
        per_player_list=False,
    ),
    NotificationType.digest: MessageSpec(
        template="digest",
        message_kind="digest",
        subject=lambda facts: digest_subject(facts.payload),
        context=lambda facts, site: {
            **digest_context(facts.payload),
            "public_base_url": own_url(site.public_url, "public_base_url"),
        },
        links={"manage_url": Purpose.manage},
        # A digest is about every player of the address: one click ends them all.
        derived_links={"unsubscribe_all_url": ("manage_url", unsubscribe_all_url)},
        list_unsubscribe="unsubscribe_all_url",
        wanted=lambda r: r.is_active and r.confirmed,
        per_player_list=False,
    ),
    NotificationType.manage_link: MessageSpec(
        template="manage_link",
        message_kind="manage",
        subject=lambda _: "Your link to manage Chess.com Helper emails",
        context=lambda _, site: {"valid_days": site.manage_link_days},
        links={"manage_url": Purpose.manage},
        list_unsubscribe=None,
        wanted=lambda _: True,
        per_player_list=False,
    ),
}


def spec_for(kind: str) -> MessageSpec:
    spec = MESSAGES.get(kind)
    if spec is None:
        raise ValueError(f"unknown notification type {kind!r}")
    return spec


def prepare(facts: EventFacts, site: Site) -> PreparedMessage:
    """Render what every recipient of the event shares (the costly part), once."""
    spec = spec_for(facts.kind)
    player = _player(facts) if spec.per_player_list else None
    return PreparedMessage(
        template=spec.template,
        context=spec.context(facts, site),
        subject=spec.subject(facts),
        sender=site.sender,
        list_id=list_id(site.domain, player),
        list_domain=site.domain,
        message_kind=spec.message_kind,
        event_key=facts.key,
        links=frozenset(spec.links) | frozenset(spec.derived_links),
        list_unsubscribe=spec.list_unsubscribe,
    )


def recipient_links(
    spec: MessageSpec, signer: TokenSigner, public_url: str, recipient: Recipient
) -> dict[str, str]:
    """The signed links of one recipient, built by the one link builder (app.urls)."""
    tokens = signer.sign_all(spec.links.values(), recipient.subscription_id, recipient.email)
    links: dict[str, str] = {}
    for name, purpose in spec.links.items():
        token = tokens[purpose]
        if _URL_SAFE_TOKEN.fullmatch(token):
            # The link builder's URL with an empty token, then the token: what it would
            # write, since a token of these characters is never quoted (tested).
            links[name] = _link_prefix(public_url, purpose) + token
        else:
            links[name] = _link(public_url, purpose, token)
    for name, (source, derive) in spec.derived_links.items():
        links[name] = derive(links[source])
    return links


# What itsdangerous' URL-safe tokens are made of: base64url and dots.
_URL_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")


def _link(public_url: str, purpose: Purpose, token: str) -> str:
    if purpose is Purpose.manage:
        return manage_url(public_url, token)
    return link_url(public_url, purpose, token)


@functools.lru_cache(maxsize=64)
def _link_prefix(public_url: str, purpose: Purpose) -> str:
    prefix = _link(public_url, purpose, "")
    if not prefix.endswith("token="):
        raise ValueError(f"a {purpose} link must end with its token: {prefix!r}")
    return prefix
