"""Chess.com's streamer list as a source (SPEC §10): who of the tracked Chess.com
players went live on a stream.

Once per `STREAMERS_POLL_SECONDS`, one worker (whichever takes the lease in
`source_leases`) reads `/pub/streamers` with the last ETag, inside the Chess.com
request budget (one request per period). The list's live entries are kept with the
lease, so a 304 still serves the players tracked since the last 200 (their baseline).
A list that fails to parse, or a failed request, changes nothing: the next period
tries again. Then, in one transaction: each tracked Chess.com player in the list, or
streaming until now, or never read (baseline) gets :func:`observe_stream`; changed
rows are written in one statement and every stream start emits one `stream` event.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.chesscom.client import ChessComClient, NotModified
from app.chesscom.errors import ChessComError, RateLimited
from app.chesscom.streamers import live_streams
from app.notifications.payloads import LiveStream
from worker.budget import RequestBudget
from worker.sources.base import Source
from worker.sources.events import Subject, emit_stream
from worker.sources.stream_rows import StreamRow, write_stream_states
from worker.sources.streams import StreamStart, StreamState, observe_stream

log = logging.getLogger(__name__)

LEASE = "chesscom-streamers"

_ENSURE = "INSERT INTO source_leases (name) VALUES (:name) ON CONFLICT (name) DO NOTHING"
# Taking the period's read: the lease moves a period ahead, so nobody else reads it.
_TAKE = """
UPDATE source_leases
SET next_run_at = now() + make_interval(secs => :period), updated_at = now()
WHERE name = :name AND next_run_at <= now()
RETURNING etag, state, extract(epoch FROM now())::float8 AS now
"""
_UNTIL = (
    "SELECT extract(epoch FROM next_run_at - now())::float8 FROM source_leases WHERE name = :name"
)
_SAVE = """
UPDATE source_leases SET etag = :etag, state = CAST(:state AS jsonb) WHERE name = :name
"""
# The players a read can change: listed as live, streaming until now, or never read.
_CANDIDATES = """
SELECT player_id, username, name, is_streaming, stream_url,
       extract(epoch FROM stream_started_at)::float8 AS started_at,
       extract(epoch FROM stream_seen_at)::float8 AS seen_at,
       stream_checked_at IS NOT NULL AS checked
FROM players
WHERE platform = 'chesscom'
  AND (username = ANY(CAST(:live AS varchar[])) OR is_streaming OR stream_checked_at IS NULL)
ORDER BY player_id
FOR UPDATE
"""


class StreamersSource(Source):
    name = "chesscom-streamers"

    def __init__(
        self,
        client: ChessComClient,
        budget: RequestBudget,
        session_factory: async_sessionmaker[AsyncSession],
        period_seconds: float,
    ) -> None:
        self.client = client
        self.budget = budget
        self.session_factory = session_factory
        self.period = period_seconds
        self.alerts = 0  # stream events emitted by this process (tests, logs)

    async def step(self) -> float:
        taken = await self._take_lease()
        if isinstance(taken, float):
            return min(taken, self.period)
        etag, state, now = taken
        await self.budget.acquire()
        try:
            answer = await self.client.get_streamers(etag=etag)
        except RateLimited as exc:
            await self.budget.rate_limited(exc.retry_after)
            log.info("streamer list: 429; next read in %.0fs", self.period)
            return self.period
        except ChessComError as exc:
            log.warning("streamer list unreadable (%s); nothing changed", exc)
            return self.period
        if isinstance(answer, NotModified):
            live = {k: LiveStream(v[0], v[1]) for k, v in (state.get("live") or {}).items()}
        else:
            live = {k: LiveStream(s.type, s.url) for k, s in live_streams(answer.data).items()}
            etag = answer.etag
        await self._apply(live, etag, state.get("read_at"), now)
        return self.period

    async def _take_lease(self) -> tuple[str | None, dict[str, Any], float] | float:
        """(etag, state, now) when this worker reads this period; else seconds to wait."""
        async with self.session_factory() as session, session.begin():
            params = {"name": LEASE, "period": self.period}
            row = (await session.execute(text(_TAKE), params)).one_or_none()
            if row is None:
                await session.execute(text(_ENSURE), {"name": LEASE})
                row = (await session.execute(text(_TAKE), params)).one_or_none()
            if row is not None:
                return row.etag, dict(row.state or {}), float(row.now)
            wait = await session.scalar(text(_UNTIL), {"name": LEASE})
        return max(0.0, float(wait or 0.0))

    async def _apply(
        self,
        live: dict[str, LiveStream],
        etag: str | None,
        previous_read: float | None,
        now: float,
    ) -> None:
        async with self.session_factory() as session, session.begin():
            rows = (await session.execute(text(_CANDIDATES), {"live": sorted(live)})).all()
            changed: list[tuple[int, StreamState]] = []
            starts: list[tuple[Subject, StreamStart]] = []
            for row in rows:
                player = StreamRow.from_row(row, "chesscom")
                state, start = observe_stream(
                    player.state, live.get(row.username), now=now, previous_read=previous_read
                )
                if state != player.state:
                    changed.append((row.player_id, state))
                if start is not None:
                    starts.append((player.subject, start))
            await write_stream_states(session, changed, now)
            for subject, start in starts:
                await emit_stream(session, subject, start)
            saved = {"live": {k: [v.type, v.url] for k, v in live.items()}, "read_at": now}
            await session.execute(text(_SAVE), {"name": LEASE, "etag": etag, "state": _json(saved)})
        self.alerts += len(starts)
        if starts:
            log.info(
                "streams started",
                extra={"players": [s.username for s, _ in starts], "at": _iso(now)},
            )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()
