"""How a source's event enters the outbox: stored once, fanned out once (SPEC §5, §7).

Both run in the caller's transaction, the one that records what the source saw, so
the state change, the event and its outbox rows commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import NotificationType
from app.notifications.outbox import fan_out, record_event
from app.notifications.payloads import GameRecord, StreamStarted, live_session
from app.players.keys import key_of
from worker.sources.streams import StreamStart, stream_event_key


@dataclass(frozen=True, slots=True)
class Subject:
    """The player an event is about."""

    player_id: int
    platform: str
    username: str
    name: str | None

    @property
    def key(self) -> str:
        return key_of(self.platform, self.username)


async def emit_session(
    session: AsyncSession,
    player: Subject,
    event_key: str,
    started_at: int,
    games: Sequence[GameRecord],
) -> int:
    """A `session` event (`live_match`): the player started a session of live games.
    Returns the outbox rows queued."""
    payload = live_session(
        player.username, player.name, started_at, games, platform=player.platform
    )
    event_id = await record_event(
        session,
        NotificationType.live_match,
        event_key,
        payload,
        player_id=player.player_id,
        occurred_at=datetime.fromtimestamp(started_at, UTC),
    )
    return await fan_out(session, event_id)


async def emit_stream(session: AsyncSession, player: Subject, start: StreamStart) -> int:
    """A `stream` event (`stream_started`): the player went live on a stream."""
    payload = StreamStarted(
        username=player.username,
        name=player.name,
        platform=player.platform,
        key=player.key,
        started_at=int(start.started_at),
        stream=start.stream,
    )
    event_id = await record_event(
        session,
        NotificationType.stream_started,
        stream_event_key(player.platform, player.username, start.started_at),
        payload,
        player_id=player.player_id,
        occurred_at=datetime.fromtimestamp(start.started_at, UTC),
    )
    return await fan_out(session, event_id)
