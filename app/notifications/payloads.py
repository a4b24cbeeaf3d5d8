"""What a notification says: the typed payload of each kind of event, stored once per event.

A game has one record type from the Chess.com payload to the email: :class:`GameRecord`
is built from the archive's ``Game``, read by detection, stored in the event's payload
as JSON and read back as a ``GameRecord`` by whoever renders the message (an email, a
webhook). Payloads are validated with pydantic when read, so a malformed row fails
loudly at delivery instead of rendering garbage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from app.chesscom.payloads import Game
from app.models.notification import NotificationType


@dataclass(frozen=True, slots=True)
class GameRecord:
    """One finished archive game: what detection and every message about it need."""

    event_id: str  # game uuid, or url when there is no uuid
    url: str
    end_time: int  # Unix seconds
    start_time: int  # Unix seconds, estimated; never after end_time
    time_class: str  # bullet / blitz / rapid / daily
    time_control: str = ""
    white: str = ""
    black: str = ""
    white_rating: int | None = None
    black_rating: int | None = None
    white_result: str = ""
    black_result: str = ""
    rated: bool = False
    # A game seen starting (Lichess's status API), not a finished archive game: no
    # result, no opponent, and whether it is rated is not known yet.
    in_progress: bool = False

    @property
    def is_live(self) -> bool:
        """Anything that is not a daily (correspondence) game is live play."""
        return self.time_class != "daily"

    def side(self, username: str) -> tuple[str, int | None, str | None]:
        """The game as ``username`` played it: (opponent, opponent's rating, the
        player's Chess.com result code or None)."""
        if self.white.lower() == username.lower():
            return self.black, self.black_rating, self.white_result or None
        return self.white, self.white_rating, self.black_result or None

    @property
    def ended_at(self) -> datetime:
        return datetime.fromtimestamp(self.end_time, UTC)

    @classmethod
    def from_game(cls, game: Game) -> GameRecord:
        """The record of a game of a Chess.com monthly archive."""
        # Field by field, by name: the one place a Chess.com game becomes a GameRecord.
        # Keyword calls that copy one record into another look alike to the duplicate
        # scan (the worker builds its jobs, views and connections the same way); each
        # maps its own types, so they are kept apart.
        return cls(
            event_id=game.event_id,
            url=game.url,
            end_time=game.end_time,
            start_time=game.started_at_unix,
            time_class=game.time_class,
            time_control=game.time_control,
            white=game.white.username,
            black=game.black.username,
            white_rating=game.white.rating,
            black_rating=game.black.rating,
            white_result=game.white.result,
            black_result=game.black.result,
            rated=game.rated,
        )


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A ``live_match`` event: a tracked player started a session of live games."""

    username: str
    name: str | None
    started_at: int  # Unix seconds
    games: tuple[GameRecord, ...]
    platform: str = "chesscom"  # the player's platform (SPEC §10)

    @property
    def time_classes(self) -> list[str]:
        """The time classes of the session's games: what subscribers filter on."""
        return sorted({g.time_class for g in self.games})

    @property
    def rated_time_classes(self) -> list[str]:
        """The time classes of the session's rated games (for "rated only" filters).

        A game seen starting counts: whether it is rated is not known before it ends,
        and a rated-only subscriber would rather hear of it than miss it."""
        return sorted({g.time_class for g in self.games if g.rated or g.in_progress})


@dataclass(frozen=True, slots=True)
class LiveStream:
    """Where a live stream is watched (`type`: twitch, youtube, kick, lichess...)."""

    type: str
    url: str | None


STREAM_NAMES = {"twitch": "Twitch", "youtube": "YouTube", "kick": "Kick", "lichess": "Lichess"}


def stream_label(kind: str) -> str:
    """Where a stream is, as people write it: `twitch` → Twitch, `youtube` → YouTube
    (unknown kinds capitalised; none at all → "stream")."""
    cleaned = " ".join((kind or "").split()) or "stream"
    return STREAM_NAMES.get(cleaned.lower(), cleaned.capitalize())


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """A ``stream_started`` event: a tracked player went live on a stream (SPEC §10)."""

    username: str
    name: str | None
    platform: str  # the player's platform: chesscom / lichess
    key: str  # the player key
    started_at: int  # Unix seconds
    stream: LiveStream

    @property
    def stream_url(self) -> str | None:
        return self.stream.url

    @property
    def stream_type(self) -> str:
        """Where the stream is: twitch, youtube, kick, lichess..."""
        return self.stream.type


@dataclass(frozen=True, slots=True)
class NoPayload:
    """Events whose message needs nothing beyond the subscription (confirm, erase)."""

    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Digest:
    """A ``digest`` event: one address's sessions and streams since its previous digest
    (issue 12; streams: SPEC §10, an event of their own held like a session)."""

    local_date: str  # ISO date in the address's time zone: one digest per address and date
    timezone: str
    sessions: tuple[LiveSession, ...]
    # Digests stored before streams existed have none: the default reads them.
    streams: tuple[StreamStarted, ...] = ()


Payload = LiveSession | StreamStarted | NoPayload | Digest

_LIVE_SESSION = TypeAdapter(LiveSession)
_STREAM = TypeAdapter(StreamStarted)
_DIGEST = TypeAdapter(Digest)


def dump_payload(payload: Payload) -> dict[str, Any]:
    """Plain JSON for the ``events.payload`` column."""
    if isinstance(payload, NoPayload):
        return dict(payload.extra)
    if isinstance(payload, Digest):
        digest: dict[str, Any] = _DIGEST.dump_python(payload, mode="json")
        return digest
    if isinstance(payload, StreamStarted):
        stream: dict[str, Any] = _STREAM.dump_python(payload, mode="json")
        return stream
    result: dict[str, Any] = _LIVE_SESSION.dump_python(payload, mode="json")
    return result


def load_payload(kind: str, data: Mapping[str, Any]) -> Payload:
    """The typed payload of an event of ``kind``; raises ``ValueError`` when malformed
    (pydantic's ``ValidationError`` is one)."""
    if kind == NotificationType.live_match:
        session: LiveSession = _LIVE_SESSION.validate_python(dict(data))
        return session
    if kind == NotificationType.stream_started:
        started: StreamStarted = _STREAM.validate_python(dict(data))
        return started
    if kind == NotificationType.digest:
        digest: Digest = _DIGEST.validate_python(dict(data))
        return digest
    if kind in (
        NotificationType.confirmation,
        NotificationType.erase_request,
        NotificationType.manage_link,
    ):
        return NoPayload(extra=dict(data))
    raise ValueError(f"unknown event kind {kind!r}")


def live_session(
    username: str,
    name: str | None,
    started_at: int,
    games: Sequence[GameRecord],
    *,
    platform: str = "chesscom",
) -> LiveSession:
    """A live-session payload with its games in the order they ended."""
    ordered = tuple(sorted(games, key=lambda g: (g.end_time, g.event_id)))
    return LiveSession(
        username=username, name=name, started_at=started_at, games=ordered, platform=platform
    )
