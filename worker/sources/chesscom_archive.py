"""Chess.com's monthly archives as a source: claim due players → poll → detect → record.

The rules live in their own modules, unchanged by being a source: the schedule
(`worker.schedule`, `worker.scheduler`: who is due, claimed with SKIP LOCKED), the
shared request budget (`worker.budget`), one poll (`worker.poller`: conditional
requests, detection, state and events in one transaction) and the detection rules
(`worker.detection`: the first poll is a baseline). This class is what the runner
drives: one claimed batch per step, polled concurrently under the adaptive limit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime

from app.chesscom.client import ChessComClient
from app.config import Settings
from worker import metrics
from worker.concurrency import AdaptiveLimiter
from worker.health import LoopState, is_connectivity_error
from worker.poller import Poller
from worker.scheduler import (
    ClaimedPlayer,
    claim_players,
    count_tracked,
    release_players,
    seconds_until_next_due,
)
from worker.sources.base import Source

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 5.0  # longest sleep between scheduler checks
TRACKED_COUNT_SECONDS = 60.0  # how often the schedule learns the number of tracked players


class ArchiveSource(Source):
    name = "polling"  # the loop's name in health and logs since before sources

    def __init__(
        self,
        settings: Settings,
        client: ChessComClient,
        poller: Poller,
        stop: asyncio.Event,
        state: LoopState,
    ) -> None:
        self.settings = settings
        self.client = client
        self.poller = poller
        self.limiter: AdaptiveLimiter = poller.limiter
        self.session_factory = poller.session_factory
        self.stop = stop
        self.state = state
        self.tally: Counter[str] = Counter()  # poll outcomes since the last --once began
        self._tracked_counted_at = -math.inf

    async def step(self) -> float:
        batch = await self._claim()
        if batch:
            await self._poll_batch(batch)
            return 0.0
        async with self.session_factory() as session:
            wait = await seconds_until_next_due(session)
        return min(IDLE_POLL_SECONDS, wait if wait is not None else IDLE_POLL_SECONDS)

    async def run_once(self, since: datetime | None = None) -> None:
        """Poll every Chess.com player not polled since `since` (the pass's start)."""
        while True:
            batch = await self._claim(since=since or datetime.now().astimezone())
            if not batch:
                return
            await self._poll_batch(batch)

    # -- internals ----------------------------------------------------------------

    async def _poll_batch(self, batch: list[ClaimedPlayer]) -> None:
        """Poll a claimed batch concurrently (the limiter bounds HTTP parallelism);
        players not started when the stop comes are released."""
        pending = list(batch)
        running: set[asyncio.Task[object]] = set()
        width = max(1, self.settings.poll_concurrency * 2)
        stopped = asyncio.create_task(self.stop.wait())
        try:
            while pending or running:
                while pending and len(running) < width and not self.stop.is_set():
                    claimed = pending.pop(0)
                    running.add(asyncio.create_task(self._poll_one(claimed)))
                if self.stop.is_set() and pending:
                    await self._release([p.player_id for p in pending])
                    pending.clear()
                if running:
                    # Wake on the stop too, so unstarted players go back at once.
                    done, _ = await asyncio.wait(
                        {*running, stopped}, return_when=asyncio.FIRST_COMPLETED
                    )
                    running -= done
        finally:
            stopped.cancel()
            if pending:  # cancelled mid-batch: still give the rest back
                await asyncio.shield(self._release([p.player_id for p in pending]))
        metrics.CONCURRENCY_LIMIT.set(self.limiter.limit)

    async def _release(self, player_ids: list[int]) -> None:
        async with self.session_factory() as session, session.begin():
            await release_players(session, player_ids)

    async def _poll_one(self, claimed: ClaimedPlayer) -> object:
        try:
            outcome = await self.poller.poll(claimed)
        except Exception as exc:
            # One bad player never stops a cycle. A database outage fails every poll in
            # flight: the loop's state change says so once, not one traceback per player.
            if is_connectivity_error(exc):
                self.state.failed(exc)
            else:
                log.exception("poll of %s crashed", claimed.username)
            self.tally["crashed"] += 1
            return None
        self.tally[str(outcome)] += 1
        if str(outcome) != "failed":
            metrics.LAST_SUCCESSFUL_POLL.set(time.time())
        self.state.ok()
        return outcome

    async def _count_tracked(self) -> None:
        """Tell the schedule how many players the budget serves (it may poll likely
        sessions faster than the base interval when the budget can sweep everyone
        faster); counted at most once a minute."""
        now = time.monotonic()
        if now - self._tracked_counted_at < TRACKED_COUNT_SECONDS:
            return
        async with self.session_factory() as session:
            tracked = await count_tracked(session)
        self.poller.policy = replace(self.poller.policy, tracked_players=tracked)
        self._tracked_counted_at = now

    async def _claim(self, since: datetime | None = None) -> list[ClaimedPlayer]:
        await self._count_tracked()
        async with self.session_factory() as session, session.begin():
            return await claim_players(
                session,
                limit=self.settings.poll_batch_size,
                policy=self.poller.policy,
                since=since,
            )
