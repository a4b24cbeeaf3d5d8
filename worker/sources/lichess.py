"""Lichess as a source (SPEC §10): a sweep of `/api/users/status` over every tracked
Lichess player, one request at a time across every process.

Each step takes the one Lichess turn (`app.lichess.gate`: a row lock shared with the
API's profile reads, spaced by `LICHESS_REQUESTS_PER_SECOND`, paused a minute by a
429), and inside it reads the next batch of at most 100 players after the sweep's
cursor, which is kept on the same row (read with the lock, written with the next slot:
a turn is the lock, the batch, the request and one update): consecutive requests,
whichever worker sends them, cover consecutive batches, and a sweep covers every player
once. A sweep that
ends early waits for `LICHESS_SWEEP_SECONDS` to pass since it began (Lichess suggests
about 5 s); a budget too small for that simply makes the sweep longer.

The cursor moves only when a request succeeded, so a failing Lichess (down, slow,
garbage) retries the same batch with a growing pause while Chess.com polling and
delivery, which run on loops of their own, go on.

What a status read changes is decided by the pure rules (`worker.sources.lichess_rules`
for games, `worker.sources.streams` for streams) on the state read under the rows'
locks; only players whose state changed are written, in one transaction with the events
they emit. Reads that change nothing write nothing (but `last_checked_at`, at most once
a minute).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.backoff import Backoff
from app.lichess.client import LichessClient
from app.lichess.errors import LichessError, LichessRateLimited, LichessTimedOut
from app.lichess.gate import LichessGate, LichessPaused, Turn
from app.lichess.payloads import MAX_IDS_PER_REQUEST, UserStatus, streamer_url
from app.notifications.payloads import LiveStream
from worker.health import describe
from worker.sources.base import Source
from worker.sources.events import Subject, emit_session, emit_stream
from worker.sources.lichess_rules import (
    GameStart,
    LichessState,
    needs_write,
    observe_lichess,
)
from worker.sources.stream_rows import StreamRow, write_stream_states
from worker.sources.streams import StreamStart, StreamState, observe_stream

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0  # no Lichess player tracked: look again this often
FAILURE_BACKOFF_FIRST = 1.0
FAILURE_BACKOFF_MAX = 60.0
CHECKED_EVERY_SECONDS = 60.0  # precision of last_checked_at for Lichess players
RECORDS_IN_FLIGHT = 2  # answers being written while the next request is out

# Lichess players have the negative ids (app.models.player): a range scan of the key.
_BATCH = """
SELECT player_id, username FROM players
WHERE player_id < :cursor AND gone_at IS NULL
ORDER BY player_id DESC LIMIT :limit
"""
_STATES = """
SELECT player_id, username, name, detection_state, is_playing, current_game_url,
       is_streaming, stream_url,
       extract(epoch FROM stream_started_at)::float8 AS started_at,
       extract(epoch FROM stream_seen_at)::float8 AS seen_at,
       stream_checked_at IS NOT NULL AS checked
FROM players WHERE player_id = ANY(CAST(:ids AS bigint[]))
ORDER BY player_id
{lock}
"""
_GAME_COLUMNS = """
UPDATE players AS p
SET detection_state = CAST(v.state AS jsonb), is_playing = v.playing,
    current_game_url = v.url, last_checked_at = to_timestamp(:now),
    last_game_at = CASE WHEN v.live_at IS NULL THEN p.last_game_at
                        ELSE to_timestamp(v.live_at) END
FROM unnest(CAST(:ids AS bigint[]), CAST(:states AS text[]), CAST(:playing AS boolean[]),
            CAST(:urls AS varchar[]), CAST(:live_at AS float8[]))
     AS v(player_id, state, playing, url, live_at)
WHERE p.player_id = v.player_id
"""
_CHECKED = """
UPDATE players SET last_checked_at = to_timestamp(:now)
WHERE player_id = ANY(CAST(:ids AS bigint[]))
  AND (last_checked_at IS NULL
       OR last_checked_at < to_timestamp(CAST(:now AS float8) - CAST(:every AS float8)))
"""


@dataclass(frozen=True, slots=True)
class Seen:
    """What one read means for one player: the next states and what to emit."""

    subject: Subject
    game_before: LichessState
    game: LichessState
    is_playing: bool
    game_url: str | None
    stream_before: StreamState
    stream: StreamState
    session_start: GameStart | None
    stream_start: StreamStart | None
    row_playing: bool
    row_url: str | None

    @property
    def changed(self) -> bool:
        return (
            needs_write(self.game_before, self.game)
            or self.is_playing != self.row_playing
            or self.game_url != self.row_url
            or self.stream != self.stream_before
        )


def judge(row: Any, status: UserStatus | None, *, now: float, gap: float) -> Seen:
    """Apply one status read to one player's row (pure)."""
    player = StreamRow.from_row(row, "lichess")
    subject, stream_before = player.subject, player.state
    game_before = LichessState.from_json(row.detection_state)
    observed = observe_lichess(game_before, status, now=now, gap_seconds=gap)
    live = (
        LiveStream("lichess", streamer_url(row.username)) if status and status.streaming else None
    )
    stream, stream_start = observe_stream(stream_before, live, now=now)
    return Seen(
        subject,
        game_before,
        observed.state,
        observed.is_playing,
        observed.current_game_url,
        stream_before,
        stream,
        observed.session,
        stream_start,
        row.is_playing,
        row.current_game_url,
    )


class LichessSource(Source):
    name = "lichess"

    def __init__(
        self,
        client: LichessClient,
        gate: LichessGate,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        gap_seconds: float,
        sweep_seconds: float,
    ) -> None:
        self.client = client
        self.gate = gate
        self.session_factory = session_factory
        self.gap = gap_seconds
        self.sweep_seconds = sweep_seconds
        # Lichess down, slow or answering garbage: the same batch again, waiting longer.
        self.failing = Backoff(FAILURE_BACKOFF_FIRST, FAILURE_BACKOFF_MAX)
        self.requests = 0
        self._recording: set[asyncio.Task[None]] = set()
        self._record_slots = asyncio.Semaphore(RECORDS_IN_FLIGHT)
        self.sessions = 0
        self.streams = 0

    async def step(self) -> float:
        try:
            async with self.gate.turn() as turn:
                batch, wait = await self._next_batch(turn)
                if not batch:
                    return wait
                statuses = await self.client.get_statuses([name for _, name in batch])
                self.requests += 1
                # The cursor moves with the turn's commit, only after a good answer.
                turn.sweep_cursor = batch[-1][0]
        except LichessPaused as paused:
            return paused.seconds
        except (LichessRateLimited, LichessTimedOut) as exc:
            log.warning("%s: every Lichess request waits %.0fs", exc, self.gate.pause_seconds)
            return self.gate.pause_seconds
        except LichessError as exc:
            pause = self.failing.failed()
            log.warning("lichess status read failed (%s); retrying in %.0fs", exc, pause)
            return pause
        self.failing.succeeded()
        # Recorded beside the next request, not before it: the one-at-a-time budget is
        # the sweep's pace, so the loop goes back for the next turn at once (at most
        # RECORDS_IN_FLIGHT answers wait to be written: memory stays bounded).
        await self._record_slots.acquire()
        ids = [pid for pid, _ in batch]
        recording = asyncio.create_task(self._record_then_release(ids, statuses, time.time()))
        self._recording.add(recording)
        recording.add_done_callback(self._recording.discard)
        return 0.0

    async def _record_then_release(
        self, player_ids: list[int], statuses: list[UserStatus], now: float
    ) -> None:
        try:
            await self.record(player_ids, statuses, now=now)
        except Exception as exc:
            # The next sweep reads these players again: a game still running is found
            # then (one sweep later), none is lost.
            log.warning("recording a Lichess status read failed: %s", describe(exc))
        finally:
            self._record_slots.release()

    async def settle(self) -> None:
        """Wait until every answer read so far is recorded (shutdown, --once, tests)."""
        while self._recording:
            await asyncio.gather(*list(self._recording), return_exceptions=True)

    async def run_once(self) -> None:
        """One full sweep (for `--once`)."""
        async with self.session_factory() as session, session.begin():
            await session.execute(text("UPDATE lichess_request_budget SET sweep_cursor = NULL"))
        while await self.step() == 0:  # one batch after another, to the sweep's end
            continue
        await self.settle()

    async def _next_batch(self, turn: Turn) -> tuple[list[tuple[int, str]], float]:
        """The next batch of the sweep ([] and the seconds to wait when the sweep is
        done early or nobody is tracked)."""
        session, now, running = turn.session, turn.now, turn.sweep_cursor is not None
        cursor = turn.sweep_cursor
        if cursor is None or cursor >= 0:
            cursor = 0
        batch = await self._batch_after(session, cursor)
        if batch and running:
            return batch, 0.0
        if not batch:  # the sweep is over: the next begins once its time is up
            started = turn.sweep_started if running else None
            if started is not None and now - started < self.sweep_seconds:
                return [], float(self.sweep_seconds - (now - started))
            batch = await self._batch_after(session, 0)
            if not batch:
                return [], IDLE_SECONDS
        # A new sweep (written with the turn's end, even if its first request fails).
        turn.sweep_cursor, turn.sweep_started = 0, now
        return batch, 0.0

    @staticmethod
    async def _batch_after(session: AsyncSession, cursor: int) -> list[tuple[int, str]]:
        rows = await session.execute(text(_BATCH), {"cursor": cursor, "limit": MAX_IDS_PER_REQUEST})
        return [(r.player_id, r.username) for r in rows.all()]

    async def record(
        self, player_ids: Sequence[int], statuses: Sequence[UserStatus], *, now: float
    ) -> None:
        """Apply one answer: read the batch's states without locks; for the players
        whose state changed, lock, re-read and write, with their events, in one
        transaction."""
        by_name = {s.id: s for s in statuses}
        async with self.session_factory() as session:
            rows = (
                await session.execute(text(_STATES.format(lock="")), {"ids": list(player_ids)})
            ).all()
        moved = [
            r.player_id
            for r in rows
            if judge(r, by_name.get(r.username), now=now, gap=self.gap).changed
        ]
        async with self.session_factory() as session, session.begin():
            if moved:
                await self._write(session, moved, by_name, now)
            await session.execute(
                text(_CHECKED),
                {"ids": list(player_ids), "now": now, "every": CHECKED_EVERY_SECONDS},
            )

    async def _write(
        self,
        session: AsyncSession,
        player_ids: list[int],
        by_name: dict[str, UserStatus],
        now: float,
    ) -> None:
        rows = (
            await session.execute(text(_STATES.format(lock="FOR UPDATE")), {"ids": player_ids})
        ).all()
        seen = [judge(r, by_name.get(r.username), now=now, gap=self.gap) for r in rows]
        seen = [s for s in seen if s.changed]
        if not seen:
            return
        await session.execute(
            text(_GAME_COLUMNS),
            {
                "ids": [s.subject.player_id for s in seen],
                "states": [_json(s.game.to_json()) for s in seen],
                "playing": [s.is_playing for s in seen],
                "urls": [s.game_url for s in seen],
                "live_at": [s.game.last_live_at for s in seen],
                "now": now,
            },
        )
        await write_stream_states(
            session,
            [(s.subject.player_id, s.stream) for s in seen if s.stream != s.stream_before],
            now,
        )
        for s in seen:
            if s.session_start is not None:
                start = s.session_start
                await emit_session(
                    session, s.subject, start.game.event_id, start.started_at, [start.game]
                )
                self.sessions += 1
            if s.stream_start is not None:
                await emit_stream(session, s.subject, s.stream_start)
                self.streams += 1


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
