"""The worker process: a polling loop and a delivery loop sharing one stop event.

Long-lived things (engine, httpx client, SMTP pool) are built once here. Shutdown:
signal → stop event → loops stop claiming → in-flight work finishes within the grace
period → what is still claimed is released for other workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.engine import make_url

from app.chesscom.client import ChessComClient
from app.config import Settings
from app.db import create_engine, create_session_factory, database_url
from app.notifications.outbox import OUTBOX_CHANNEL
from app.subscriptions.tokens import TokenSigner
from worker import metrics
from worker.concurrency import AdaptiveLimiter
from worker.delivery import Deliverer
from worker.mailer import FileMailer, Mailer, SMTPMailer
from worker.poller import Poller
from worker.scheduler import ClaimedPlayer, claim_players, release_players, seconds_until_next_due

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 5.0  # longest sleep between scheduler checks
OUTBOX_SAFETY_POLL_SECONDS = 5.0  # NOTIFY wakes delivery; this catches anything missed
# --once waits for rows due within this window: retries in backoff (5 attempts take
# about 40-80 s) and rows leased by a worker that died mid-send (DELIVERY_LEASE_SECONDS).
ONCE_DRAIN_WINDOW_SECONDS = 300.0


def build_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SMTPMailer(
            settings.smtp_host,
            settings.smtp_port
            or (
                465
                if settings.smtp_tls == "tls"
                else 587
                if settings.smtp_tls == "starttls"
                else 25
            ),
            username=settings.smtp_username,
            password=settings.smtp_password,
            tls=settings.smtp_tls,
            pool_size=settings.smtp_pool_size,
        )
    log.info("SMTP_HOST is not set: emails are written to %s", settings.outbox_dir)
    return FileMailer(settings.outbox_dir)


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        mailer: Mailer | None = None,
        client: ChessComClient | None = None,
    ) -> None:
        self.settings = settings
        self.stop = asyncio.Event()
        # Poll outcomes and delivery results since the last --once pass began.
        self.tally: Counter[str] = Counter()
        self.mail_tally: Counter[str] = Counter()
        self._wake_delivery = asyncio.Event()
        self.engine = create_engine(settings)
        self.session_factory = create_session_factory(self.engine)
        self.client = client or ChessComClient(
            settings.api_base,
            user_agent=settings.user_agent,
            timeout=settings.chesscom_timeout_seconds,
        )
        self.limiter = AdaptiveLimiter(settings.poll_concurrency)
        self.mailer = mailer or build_mailer(settings)
        self.poller = Poller(settings, self.client, self.limiter, self.session_factory)
        self.deliverer = Deliverer(
            settings, self.mailer, TokenSigner(settings.resolved_secret_key()), self.session_factory
        )
        self._listener: asyncpg.Connection | None = None

    async def aclose(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
        await self.client.aclose()
        await self.mailer.aclose()
        await self.engine.dispose()

    # -- polling ----------------------------------------------------------------

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
        except Exception:
            # One bad player never stops a cycle.
            log.exception("poll of %s crashed", claimed.username)
            self.tally["crashed"] += 1
            return None
        self.tally[str(outcome)] += 1
        return outcome

    async def _claim(self, since: datetime | None = None) -> list[ClaimedPlayer]:
        s = self.settings
        async with self.session_factory() as session, session.begin():
            return await claim_players(
                session,
                limit=s.poll_batch_size,
                policy=self.poller.policy,
                since=since,
            )

    async def polling_loop(self) -> None:
        while not self.stop.is_set():
            try:
                batch = await self._claim()
                if batch:
                    await self._poll_batch(batch)
                    continue
                async with self.session_factory() as session:
                    wait = await seconds_until_next_due(session)
            except Exception:
                log.exception("polling loop error; retrying shortly")
                wait = IDLE_POLL_SECONDS
            await self._sleep(
                min(IDLE_POLL_SECONDS, wait if wait is not None else IDLE_POLL_SECONDS)
            )

    async def poll_all_once(self, since: datetime) -> None:
        while True:
            batch = await self._claim(since=since)
            if not batch:
                return
            await self._poll_batch(batch)

    # -- delivery ---------------------------------------------------------------

    async def _deliver_batch(self) -> int:
        rows = await self.deliverer.claim(limit=self.settings.delivery_concurrency * 4)
        if not rows:
            return 0
        tasks = [asyncio.create_task(self.deliverer.deliver(r)) for r in rows]
        try:
            sent = await asyncio.gather(*tasks)
            self.mail_tally["sent"] += sum(sent)
            self.mail_tally["not sent yet"] += len(sent) - sum(sent)
        except asyncio.CancelledError:
            # Cancelled at shutdown: rows whose send never started go back at once.
            unfinished = [r.id for r, t in zip(rows, tasks, strict=True) if not t.done()]
            for t in tasks:
                t.cancel()
            await asyncio.shield(self.deliverer.release(unfinished))
            raise
        return len(rows)

    async def delivery_loop(self) -> None:
        await self._listen()
        while not self.stop.is_set():
            # Cleared before looking, so a NOTIFY that lands while we look is kept.
            self._wake_delivery.clear()
            try:
                if await self._deliver_batch():
                    continue
                wait = await self.deliverer.seconds_until_next()
            except Exception:
                log.exception("delivery loop error; retrying shortly")
                wait = OUTBOX_SAFETY_POLL_SECONDS
            timeout = min(
                OUTBOX_SAFETY_POLL_SECONDS, wait if wait is not None else OUTBOX_SAFETY_POLL_SECONDS
            )
            await self._sleep(timeout, self._wake_delivery)

    async def drain_outbox(self) -> None:
        """--once: deliver until nothing is due now or soon."""
        while True:
            if await self._deliver_batch():
                continue
            wait = await self.deliverer.seconds_until_next()
            if wait is None or wait > ONCE_DRAIN_WINDOW_SECONDS:
                return
            await asyncio.sleep(min(max(wait, 0.05), 1.0))

    async def _listen(self) -> None:
        """LISTEN for new outbox rows; without it, delivery still polls every few seconds."""
        url = make_url(database_url(self.settings))
        ssl = url.query.get("ssl")
        try:
            self._listener = await asyncpg.connect(
                host=url.host,
                port=url.port,
                user=url.username,
                password=url.password,
                database=url.database,
                ssl=ssl if isinstance(ssl, str) else None,
            )
            await self._listener.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake_delivery.set())
        except Exception as exc:
            log.warning("LISTEN unavailable (%s); falling back to polling the outbox", exc)

    # -- lifecycle --------------------------------------------------------------

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        waiters = [asyncio.create_task(self.stop.wait())]
        if wake is not None:
            waiters.append(asyncio.create_task(wake.wait()))
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        for task in waiters:
            task.cancel()

    async def run_forever(self) -> None:
        tasks = [
            asyncio.create_task(self.polling_loop(), name="polling"),
            asyncio.create_task(self.delivery_loop(), name="delivery"),
        ]
        await self.stop.wait()
        log.info(
            "stopping: finishing in-flight work (grace %.0fs)", self.settings.shutdown_grace_seconds
        )
        _, still = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
        for task in still:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run_once(self) -> None:
        since = datetime.now(UTC)
        self.tally.clear()
        self.mail_tally.clear()
        await self.poll_all_once(since)
        await self.drain_outbox()
        # One line for whoever runs --once from cron: what this pass did.
        log.info("once: players %s; emails %s", _summary(self.tally), _summary(self.mail_tally))


def _summary(tally: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(tally.items()) if n) or "none"
