"""Poll one player: Chess.com → detection → new state + outbox rows, one transaction.

A poll that sees only 304s touches nothing: the claim already set the next turn.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.chesscom.client import ChessComClient, Fetched, NotModified
from app.chesscom.errors import ChessComError, ChessComUnavailable, PlayerNotFound, RateLimited
from app.chesscom.payloads import Profile
from app.chesscom.retry import with_retries
from app.config import Settings
from app.models import Player
from app.notifications.payloads import GameRecord
from app.players.service import apply_profile
from worker import metrics
from worker.budget import RequestBudget
from worker.concurrency import AdaptiveLimiter
from worker.detection import DetectionState, NewSession, detect
from worker.schedule import Activity, Policy
from worker.scheduler import ClaimedPlayer, next_turn
from worker.sources.events import Subject, emit_session

log = logging.getLogger(__name__)
T = TypeVar("T")


class Outcome(StrEnum):
    unchanged = "unchanged"  # every source answered 304
    updated = "updated"
    notified = "notified"
    gone = "gone"
    failed = "failed"
    vanished = "vanished"  # untracked while we polled


@dataclass(slots=True)
class Fetches:
    profile: Fetched[Profile] | None = None
    archives: dict[str, Fetched[Any]] = field(default_factory=dict)
    games: list[GameRecord] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.profile is not None or bool(self.archives)


@dataclass(frozen=True, slots=True)
class Gone:
    """404/410: the account is closed or renamed away; keep it, poll it rarely."""

    gone: bool  # 410 rather than 404
    outcome = Outcome.gone

    def apply(self, player: Player, now: datetime) -> None:
        player.gone_at = player.gone_at or now
        player.status = "gone" if self.gone else "closed"
        player.is_playing = False
        player.last_error = "Chess.com: 410 gone" if self.gone else "Chess.com: 404 not found"


@dataclass(frozen=True, slots=True)
class Failed:
    """Retries are spent: the player waits for a later turn, backing off."""

    error: ChessComError
    outcome = Outcome.failed

    @property
    def retry_after(self) -> timedelta:
        seconds = self.error.retry_after if isinstance(self.error, RateLimited) else None
        return timedelta(seconds=seconds or 0)

    def apply(self, player: Player) -> None:
        player.failure_count += 1
        player.last_error = f"{type(self.error).__name__}: {self.error}"[:500]


def month_key(moment: datetime) -> str:
    return f"{moment.year:04d}/{moment.month:02d}"


def months_to_poll(now: datetime, previous_poll_at: datetime | None) -> list[tuple[int, int]]:
    """The current month, and the previous one when the last poll was in it (or never ran):
    a game that ended at 23:59 on the 31st may show up only after midnight."""
    current = (now.year, now.month)
    previous = (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)
    if previous_poll_at is None or month_key(previous_poll_at) != month_key(now):
        return [previous, current]
    return [current]


@dataclass(eq=False)
class Poller:
    """Everything one poll needs, built once per worker."""

    settings: Settings
    client: ChessComClient
    limiter: AdaptiveLimiter
    session_factory: async_sessionmaker[AsyncSession]
    policy: Policy = field(init=False)
    budget: RequestBudget = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.policy = Policy(
            base_seconds=settings.poll_interval_seconds,
            gap_seconds=settings.live_session_gap_seconds,
            max_wait_seconds=settings.poll_max_wait_seconds,
            requests_per_second=settings.chesscom_requests_per_second,
        )
        self.budget = RequestBudget(self.session_factory, settings.chesscom_requests_per_second)

    async def _call(self, fn: Callable[[], Awaitable[T]], *, rate_limit_tries: int = 3) -> T:
        """One request under the adaptive limit: 429 pauses everyone and retries a few
        times; 5xx and timeouts get jittered retries; anything else propagates."""

        async def limited() -> T:
            for attempt in range(rate_limit_tries):
                async with self.limiter.slot():
                    await self.budget.acquire()
                    try:
                        result = await fn()
                    except RateLimited as exc:
                        metrics.CHESSCOM_429.inc()
                        await self.budget.rate_limited(exc.retry_after)
                        pause = self.limiter.on_rate_limited(exc.retry_after)
                        log.info(
                            "chess.com said 429; pausing %.1fs (limit %d)",
                            pause,
                            self.limiter.limit,
                        )
                        if attempt == rate_limit_tries - 1:
                            raise
                        continue
                    except ChessComUnavailable:
                        metrics.CHESSCOM_UNAVAILABLE.inc()  # retried with backoff below
                        raise
                    self.limiter.on_success()
                    return result
            raise AssertionError("unreachable")

        return await with_retries(limited)

    async def _fetch(self, claimed: ClaimedPlayer, now: datetime) -> Fetches:
        fetches = Fetches()
        stale = claimed.profile_refreshed_at is None or (
            now - claimed.profile_refreshed_at
        ) >= timedelta(seconds=self.settings.profile_refresh_seconds)
        if stale or claimed.gone:
            profile = await self._call(
                lambda: self.client.get_profile(claimed.username, etag=claimed.profile_etag)
            )
            if isinstance(profile, Fetched):
                fetches.profile = profile
        for year, month in months_to_poll(now, claimed.previous_poll_at):
            key = f"{year:04d}/{month:02d}"
            etag = claimed.archive_etags.get(key)
            result = await self._call(
                partial(self.client.get_archive, claimed.username, year, month, etag=etag)
            )
            if isinstance(result, NotModified):
                metrics.CHESSCOM_304.inc()
                continue
            fetches.archives[key] = result
            fetches.games.extend(GameRecord.from_game(g) for g in result.data.games)
        return fetches

    async def poll(self, claimed: ClaimedPlayer) -> Outcome:
        """Poll one claimed player; never raises for a Chess.com failure."""
        now = datetime.now(UTC)
        try:
            fetches = await self._fetch(claimed, now)
        except PlayerNotFound as exc:
            return await self._record(claimed, now, Gone(gone=exc.gone))
        except ChessComError as exc:
            return await self._record(claimed, now, Failed(exc))
        if not fetches.changed:
            metrics.POLLS.labels(Outcome.unchanged).inc()
            return Outcome.unchanged
        return await self._record(claimed, now, fetches)

    async def _record(
        self, claimed: ClaimedPlayer, now: datetime, seen: Fetches | Gone | Failed
    ) -> Outcome:
        """The one writer of a poll's outcome: lock the row, apply what the poll saw,
        set the next turn, enqueue new sessions, all in one transaction."""
        async with self.session_factory() as session, session.begin():
            player = await session.get(Player, claimed.player_id, with_for_update=True)
            if player is None:
                return Outcome.vanished
            new_sessions: tuple[NewSession, ...] = ()
            if isinstance(seen, Fetches):
                new_sessions = self._apply_fetches(player, claimed, seen, now)
            elif isinstance(seen, Gone):
                seen.apply(player, now)
            else:
                seen.apply(player)
            turn = next_turn(player, now, self.policy, subscribers=claimed.subscribers)
            delay = timedelta(seconds=turn.delay)
            if isinstance(seen, Failed):
                delay = max(delay, seen.retry_after)
            player.poll_delay_seconds = round(delay.total_seconds())
            player.poll_rate = turn.rate
            player.next_poll_at = now + delay
            queued = await self._enqueue_sessions(session, player, new_sessions)
        outcome = seen.outcome if not isinstance(seen, Fetches) else Outcome.updated
        if queued:
            outcome = Outcome.notified
        metrics.POLLS.labels(outcome).inc()
        self._log(claimed, seen, new_sessions, queued, delay)
        return outcome

    def _apply_fetches(
        self, player: Player, claimed: ClaimedPlayer, fetches: Fetches, now: datetime
    ) -> tuple[NewSession, ...]:
        # Detection runs on the state read under the row lock, so a late or
        # duplicate poll of the same games finds nothing new.
        result = detect(
            DetectionState.from_json(player.detection_state),
            fetches.games,
            now=int(now.timestamp()),
            gap_seconds=self.settings.live_session_gap_seconds,
        )
        player.detection_state = result.state.to_json()
        live = [(g.start_time, g.end_time) for g in fetches.games if g.is_live]
        if live:
            activity = Activity.from_json(player.activity)
            player.activity = activity.observe(live, now=now.timestamp()).to_json()
        etags = {k: v for k, v in player.archive_etags.items() if k in claimed.archive_etags}
        etags.update({k: f.etag for k, f in fetches.archives.items() if f.etag})
        player.archive_etags = {k: etags[k] for k in sorted(etags)[-2:]}
        if fetches.profile is not None:
            apply_profile(player, fetches.profile.data)
            player.profile_etag = fetches.profile.etag
            player.gone_at = None
        last_live = result.state.last_live_end
        player.last_game_at = None if last_live is None else datetime.fromtimestamp(last_live, UTC)
        player.is_playing = result.is_playing
        player.failure_count = 0
        player.last_error = None
        return result.new_sessions

    @staticmethod
    def _log(
        claimed: ClaimedPlayer,
        seen: Fetches | Gone | Failed,
        new_sessions: tuple[NewSession, ...],
        queued: int,
        delay: timedelta,
    ) -> None:
        if isinstance(seen, Gone):
            log.warning(
                "player %s is not on Chess.com any more; polling it rarely", claimed.username
            )
        elif isinstance(seen, Failed):
            log.warning(
                "poll of %s failed (%s); next try in %.0fs",
                claimed.username,
                seen.error,
                delay.total_seconds(),
            )
        elif new_sessions:
            log.info(
                "live session detected",
                extra={"player": claimed.username, "sessions": len(new_sessions), "queued": queued},
            )

    async def _enqueue_sessions(
        self, session: AsyncSession, player: Player, sessions: tuple[NewSession, ...]
    ) -> int:
        subject = Subject(player.player_id, "chesscom", player.username, player.name)
        queued = 0
        for new in sessions:
            queued += await emit_session(session, subject, new.event_id, new.started_at, new.games)
        return queued
