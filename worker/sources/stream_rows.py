"""A player's stream columns in the database, shared by every source that sees streams
(Chess.com's streamer list, Lichess's status): read into the pure StreamState, and
written back for many players in one statement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from worker.sources.events import Subject
from worker.sources.streams import StreamState

STREAM_COLUMNS_UPDATE = """
UPDATE players AS p
SET is_streaming = v.live, stream_url = v.url,
    stream_started_at = to_timestamp(v.started_at), stream_seen_at = to_timestamp(v.seen_at),
    stream_checked_at = coalesce(p.stream_checked_at, to_timestamp(:now))
FROM unnest(CAST(:ids AS bigint[]), CAST(:lives AS boolean[]), CAST(:urls AS varchar[]),
            CAST(:starts AS float8[]), CAST(:seens AS float8[]))
     AS v(player_id, live, url, started_at, seen_at)
WHERE p.player_id = v.player_id
"""


@dataclass(frozen=True, slots=True)
class StreamRow:
    """A player's stream columns, read under its row lock."""

    subject: Subject
    state: StreamState

    @classmethod
    def from_row(cls, row: Any, platform: str) -> StreamRow:
        return cls(
            Subject(row.player_id, platform, row.username, row.name),
            StreamState(row.checked, row.is_streaming, row.stream_url, row.started_at, row.seen_at),
        )


async def write_stream_states(
    session: AsyncSession, changed: list[tuple[int, StreamState]], now: float
) -> None:
    """Store changed stream states, one statement for all of them."""
    if not changed:
        return
    await session.execute(
        text(STREAM_COLUMNS_UPDATE),
        {
            "ids": [pid for pid, _ in changed],
            "lives": [s.live for _, s in changed],
            "urls": [s.url for _, s in changed],
            "starts": [s.started_at for _, s in changed],
            "seens": [s.seen_at for _, s in changed],
            "now": now,
        },
    )
