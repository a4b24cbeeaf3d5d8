"""The worker process: one loop per source (worker.sources: Chess.com's archives, its
streamer list, Lichess), a delivery loop, all sharing one stop event, and watched side
tasks (the LISTEN connection, outbox gauges, retention).

Long-lived things (engine, httpx client, SMTP pool, LISTEN connection) are built once
here. Every loop outlives a database outage: a failing round is logged once (one line
per change of state), retried with a short backoff, and counted. Shutdown: signal →
stop event → loops stop claiming → in-flight work finishes within the grace period →
what is still claimed is released for other workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from app.backoff import Backoff
from app.channels.registry import build_channels
from app.channels.telegram import TelegramChannel
from app.chesscom.client import ChessComClient
from app.config import Settings
from app.db import create_engine, create_session_factory, database_url
from app.lichess.client import LichessClient
from app.lichess.gate import LichessGate
from app.notifications.outbox import OUTBOX_CHANNEL
from app.subscriptions.digest import run_due_digests
from app.tokens import TokenSigner
from worker.concurrency import AdaptiveLimiter
from worker.health import LoopState, check_health, describe, is_connectivity_error
from worker.listener import OutboxListener
from worker.maintenance import apply_retention, refresh_outbox_stats
from worker.outbox.pipeline import BatchResult, Pipeline
from worker.poller import Poller
from worker.sources.base import Source
from worker.sources.chesscom_archive import ArchiveSource
from worker.sources.chesscom_streamers import StreamersSource
from worker.sources.lichess import LichessSource
from worker.telegram import TelegramPoller

log = logging.getLogger(__name__)

OUTBOX_SAFETY_POLL_SECONDS = 5.0  # NOTIFY wakes delivery; this catches anything missed
# While the LISTEN connection is down nothing wakes delivery: poll the outbox this often.
OUTBOX_FALLBACK_POLL_SECONDS = 0.5
# After a failed round (e.g. the database is down) a loop retries after this, doubling
# up to the maximum; the first retry is quick because most outages are restarts.
ERROR_BACKOFF_FIRST_SECONDS = 0.25
ERROR_BACKOFF_MAX_SECONDS = 5.0
# --once gives a channel whose server is unreachable (or hosts that refuse their rows)
# this long before it exits with rows pending.
ONCE_MAIL_WAIT_SECONDS = 30.0
OUTBOX_STATS_SECONDS = 5.0  # how often the outbox gauges are refreshed
RETENTION_EVERY_SECONDS = 3600.0  # prune at start, then hourly
DIGEST_EVERY_SECONDS = 60.0  # digests are due on the hour (local), checked every minute
# /healthz fails when a loop has not completed a round for this long. A round is at
# most IDLE_POLL_SECONDS of sleep, or one claimed batch whose every poll/send ticks.
HEALTH_MAX_TICK_AGE_SECONDS = 120.0
# --once waits for rows due within this window: a first retry (5 s) or a second
# (2 min), and rows leased by a worker that died mid-send (DELIVERY_LEASE_SECONDS);
# later retries (10 min, 30 min) wait for the next run.
ONCE_DRAIN_WINDOW_SECONDS = 300.0


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        client: ChessComClient | None = None,
        channel_options: Mapping[str, Mapping[str, Any]] | None = None,
        lichess: LichessClient | None = None,
    ) -> None:
        self.settings = settings
        self.stop = asyncio.Event()
        # Delivery results since the last --once pass began (polls: `tally`).
        self.mail_tally: Counter[str] = Counter()
        self._wake_delivery = asyncio.Event()
        self.engine = create_engine(settings)
        self.session_factory = create_session_factory(self.engine)
        self.client = client or ChessComClient(
            settings.api_base,
            user_agent=settings.user_agent,
            timeout=settings.chesscom_timeout_seconds,
        )
        self.lichess = lichess or LichessClient(
            settings.lichess_base,
            user_agent=settings.user_agent,
            token=settings.lichess_token,
            timeout=settings.lichess_timeout_seconds,
        )
        self.limiter = AdaptiveLimiter(settings.poll_concurrency)
        self.poller = Poller(settings, self.client, self.limiter, self.session_factory)
        self.polling_state = LoopState("polling")
        self.archive = ArchiveSource(
            settings, self.client, self.poller, self.stop, self.polling_state
        )
        # Every source: its own loop, budget and state; one fan-out, one delivery.
        self.sources: list[Source] = [
            self.archive,
            StreamersSource(
                self.client,
                self.poller.budget,  # the streamer list is counted in the Chess.com budget
                self.session_factory,
                settings.streamers_poll_seconds,
            ),
            LichessSource(
                self.lichess,
                LichessGate(self.session_factory, settings.lichess_requests_per_second),
                self.session_factory,
                gap_seconds=settings.live_session_gap_seconds,
                sweep_seconds=settings.lichess_sweep_seconds,
            ),
        ]
        self.source_states = {
            source.name: self.polling_state if source is self.archive else LoopState(source.name)
            for source in self.sources
        }
        signer = TokenSigner(settings.resolved_secret_key())
        channels = build_channels(settings, signer, channel_options)
        self.deliverer = Pipeline(settings, channels, self.session_factory)
        self.listener = OutboxListener(
            database_url(settings), OUTBOX_CHANNEL, self.wake_delivery
        )
        self.delivery_state = LoopState("delivery")
        # Set while the delivery loop sleeps with no wake-up pending: what only a NOTIFY,
        # the listener's (re)connection, queued digests or the safety poll ends.
        self.delivery_idle = asyncio.Event()
        self.outbox_safety_poll = OUTBOX_SAFETY_POLL_SECONDS
        self.outbox_fallback_poll = OUTBOX_FALLBACK_POLL_SECONDS
        self.health_max_tick_age = HEALTH_MAX_TICK_AGE_SECONDS

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.lichess.aclose()
        await self.deliverer.aclose()
        await self.engine.dispose()

    # -- sources ----------------------------------------------------------------

    @property
    def tally(self) -> Counter[str]:
        """Poll outcomes of the archive source since the last --once pass began."""
        return self.archive.tally

    async def source_loop(self, source: Source) -> None:
        """Run one source until the stop: each step says how long to wait before the
        next; a failing step (the database down) is retried with a growing pause while
        the other sources and delivery go on."""
        state = self.source_states[source.name]
        backoff = Backoff(ERROR_BACKOFF_FIRST_SECONDS, ERROR_BACKOFF_MAX_SECONDS)
        while not self.stop.is_set():
            try:
                wait = await source.step()
                state.ok()
                backoff.succeeded()
            except Exception as exc:
                state.failed(exc)
                wait = backoff.failed()
            if wait > 0:
                await self._sleep(wait)
        await source.settle()

    async def polling_loop(self) -> None:
        """The archive source's loop (the name predates the other sources)."""
        await self.source_loop(self.archive)

    async def poll_all_once(self, since: datetime) -> None:
        await self.archive.run_once(since)

    # -- delivery ---------------------------------------------------------------

    async def _deliver_batch(self) -> BatchResult:
        # Cancelled at shutdown, the pipeline releases rows whose send never started.
        batch = await self.deliverer.run_batch(self.stop, tick=self.delivery_state.ok)
        self.mail_tally.update(batch.tally)
        return batch

    async def delivery_loop(self) -> None:
        backoff = Backoff(ERROR_BACKOFF_FIRST_SECONDS, ERROR_BACKOFF_MAX_SECONDS)
        while not self.stop.is_set():
            # Cleared before looking, so a NOTIFY that lands while we look is kept.
            self._wake_delivery.clear()
            safety = (
                self.outbox_safety_poll
                if self.listener.connected.is_set()
                else self.outbox_fallback_poll
            )
            try:
                if (await self._deliver_batch()).claimed:
                    self.delivery_state.ok()
                    backoff.succeeded()
                    continue
                # A channel that is down wakes us for its next probe.
                wait = await self.deliverer.seconds_until_next()
                self.delivery_state.ok()
                backoff.succeeded()
            except Exception as exc:
                self.delivery_state.failed(exc)
                # The listener's reconnection wakes us at once when the database is back.
                wait = backoff.failed()
            timeout = min(safety, wait if wait is not None else safety)
            if not self._wake_delivery.is_set():
                self.delivery_idle.set()
            await self._sleep(timeout, self._wake_delivery)
            self.delivery_idle.clear()

    def wake_delivery(self) -> None:
        self.delivery_idle.clear()
        self._wake_delivery.set()

    async def drain_outbox(self) -> None:
        """--once: deliver until nothing is due now or soon. What only waits on a server
        or a host that refuses (nothing counted, SPEC §7) gets ONCE_MAIL_WAIT_SECONDS,
        then the next run; SIGTERM ends the drain (rows not yet sent go back)."""
        stalled_since: float | None = None  # since when every claimed row only waited
        while not self.stop.is_set():
            if max((c.outage.down_for() for c in self.deliverer.down), default=0.0) > (
                ONCE_MAIL_WAIT_SECONDS
            ):
                down = ", ".join(c.name for c in self.deliverer.down)
                log.warning("%s still unreachable; its messages wait for the next run", down)
                return
            batch = await self._deliver_batch()
            now = time.monotonic()
            if batch.progressed:
                stalled_since = None
            elif batch.claimed:
                stalled_since = stalled_since if stalled_since is not None else now
            if stalled_since is not None and now - stalled_since > ONCE_MAIL_WAIT_SECONDS:
                log.warning(
                    "webhook or push hosts still refuse; their messages wait for the next run"
                )
                return
            if batch.claimed:
                continue
            wait = await self.deliverer.seconds_until_next()
            if wait is None or wait > ONCE_DRAIN_WINDOW_SECONDS:
                return
            await self._sleep(min(max(wait, 0.05), 1.0))

    # -- side tasks: outbox gauges, retention ----------------------------------------

    async def outbox_stats_loop(self) -> None:
        while not self.stop.is_set():
            await self.refresh_outbox_stats()
            await self._sleep(OUTBOX_STATS_SECONDS)

    async def refresh_outbox_stats(self) -> None:
        await refresh_outbox_stats(self.session_factory)

    async def retention_loop(self) -> None:
        """Prune at start, then hourly; a failed run waits for the next hour (or a retry
        a minute later when the database was down)."""
        while not self.stop.is_set():
            delay = RETENTION_EVERY_SECONDS
            try:
                await self.prune()
            except Exception as exc:
                if is_connectivity_error(exc):
                    delay = 60.0
                    log.info("retention postponed: %s", describe(exc))
                else:
                    log.exception("retention run failed")
            await self._sleep(delay)

    async def digest_loop(self) -> None:
        """Make the daily digests that are due (issue 12), every DIGEST_EVERY_SECONDS."""
        while not self.stop.is_set():
            try:
                await self.run_digests()
            except Exception as exc:
                if not is_connectivity_error(exc):
                    raise
                log.info("digests postponed: %s", describe(exc))
            await self._sleep(DIGEST_EVERY_SECONDS)

    async def run_digests(self) -> None:
        run = await run_due_digests(self.session_factory)
        if run.queued:
            self.wake_delivery()
            log.info("digests: %d queued for %d due addresses", run.queued, run.claimed)

    async def prune(self) -> None:
        await apply_retention(
            self.session_factory, self.settings.notification_retention_days, self.stop
        )

    # -- health ---------------------------------------------------------------------

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) for /healthz: both loops completed a round recently and
        the database answers."""
        return await check_health(
            self.engine,
            (*self.source_states.values(), self.delivery_state),
            max_tick_age=self.health_max_tick_age,
            listen_connected=self.listener.connected.is_set(),
        )

    # -- lifecycle --------------------------------------------------------------

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        waiters = [asyncio.create_task(self.stop.wait())]
        if wake is not None:
            waiters.append(asyncio.create_task(wake.wait()))
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        for task in waiters:
            task.cancel()

    async def _watched(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a side task until the stop; if it ever crashes, say so and start it again."""
        while not self.stop.is_set():
            try:
                await run()
            except Exception:
                log.exception("%s task crashed; restarting it", name)
                await self._sleep(1.0)

    def telegram_poller(self) -> TelegramPoller:
        """The bot's getUpdates poller (one across all workers, by lease: SPEC §11)."""
        channel = self.deliverer.channels[TelegramChannel.name]
        assert isinstance(channel, TelegramChannel)
        return TelegramPoller(
            channel.client,
            self.session_factory,
            self.settings.resolved_secret_key(),
            public_url=self.settings.public_url,
        )

    async def telegram_loop(self) -> None:
        await self.telegram_poller().run(self.stop)

    async def poll_telegram_once(self) -> None:
        """--once: handle the messages the bot has waiting (a /start binds before the
        drain), never failing the pass."""
        if not self.settings.telegram_enabled:
            return
        try:
            await self.telegram_poller().poll_once(wait=0)
        except Exception as exc:
            log.warning("telegram updates skipped: %s", describe(exc))

    async def run_forever(self) -> None:
        tasks = [
            *(
                asyncio.create_task(
                    self._watched(source.name, partial(self.source_loop, source)),
                    name=source.name,
                )
                for source in self.sources
            ),
            asyncio.create_task(self._watched("delivery", self.delivery_loop), name="delivery"),
        ]
        side = [
            asyncio.create_task(
                self._watched("listen", lambda: self.listener.run(self.stop)), name="listen"
            ),
            asyncio.create_task(self._watched("outbox-stats", self.outbox_stats_loop)),
            asyncio.create_task(self._watched("retention", self.retention_loop)),
            asyncio.create_task(self._watched("digests", self.digest_loop)),
        ]
        if self.settings.telegram_enabled:
            side.append(asyncio.create_task(self._watched("telegram", self.telegram_loop)))
        await self.stop.wait()
        log.info(
            "stopping: finishing in-flight work (grace %.0fs)", self.settings.shutdown_grace_seconds
        )
        _, still = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
        for task in still:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Side tasks hold no work: they end at the stop (the listener closes its socket).
        _, still = await asyncio.wait(side, timeout=3.0)
        for task in still:
            task.cancel()
        await asyncio.gather(*side, return_exceptions=True)

    async def run_once(self) -> None:
        since = datetime.now(UTC)
        self.archive.tally.clear()
        self.mail_tally.clear()
        try:
            await self.prune()
        except Exception as exc:  # retention must not stop a cron pass from delivering
            log.warning("retention skipped: %s", describe(exc))
        await self.poll_all_once(since)
        for source in self.sources:
            if source is not self.archive:
                try:
                    await source.run_once()
                except Exception as exc:  # one source failing never stops the pass
                    log.warning("%s skipped: %s", source.name, describe(exc))
        await self.poll_telegram_once()
        await self.run_digests()
        await self.drain_outbox()
        # One line for whoever runs --once from cron: what this pass did.
        log.info("once: players %s; emails %s", _summary(self.tally), _summary(self.mail_tally))


def _summary(tally: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(tally.items()) if n) or "none"
