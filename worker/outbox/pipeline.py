"""The outbox pipeline (SPEC §7, §11): claim a batch, render, send, record — for every
channel alike. It names no channel: each row goes to ``channels[row.channel]``.

- **Claim** a batch in one statement (``SKIP LOCKED``, :mod:`worker.outbox.store`): it
  takes a lease (``locked_until``) and counts the attempt. Rows of a channel whose
  server is down are left alone, but for one row at a time that probes it.
- **Lease**: while rows are held (waiting, being sent, sent and not yet recorded) a
  keeper renews their leases every third of ``DELIVERY_LEASE_SECONDS``, so a worker
  that dies leaves its rows to others within one lease, however long a send takes.
- **Render**: what all recipients of an event share is prepared once per channel
  (:mod:`worker.outbox.events`); per row the channel fills in only what differs.
- **Send** with ``delivery_concurrency`` senders. Once half a batch has gone, the next
  is claimed in the background and joins the queue, so senders never stand idle while
  a claim runs (one and a half batches wait at most).
- **Record** outcomes in batches (:mod:`worker.outbox.recorder`), only for rows whose
  lease is still ours, with the retry policy of :mod:`worker.outbox.policy`.

Memory is bounded by the batch size and the event cache, whatever the audience.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.channels.base import Result, Verdict
from app.channels.registry import AnyChannel, subscription_columns
from app.config import Settings
from worker.outbox.events import EventCache
from worker.outbox.feed import Feed, Held, Refill
from worker.outbox.policy import SKIPPED, judge
from worker.outbox.recorder import Recorder
from worker.outbox.store import ClaimedRow, OutboxStore, Outcome

log = logging.getLogger(__name__)

# The worker's liveness is ticked after a send at most this often (not per message).
TICK_SECONDS = 0.1
# Batches claimed while one is being sent, per run_batch call (then the runner's loop
# looks at the stop signal before claiming again).
REFILLS = 8
# Leases are renewed this often, as a share of their length.
RENEW_EVERY = 1 / 3


@dataclass(slots=True)
class BatchResult:
    claimed: int = 0
    tally: Counter[str] = field(default_factory=Counter)
    # Rows that moved on (sent, retried, failed); the others were only postponed: their
    # server or host is refusing, and nothing was counted.
    progressed: int = 0


class SeenOnce:
    """Which keys were seen, remembering the last ``size`` of them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[object, ...], None] = OrderedDict()

    def first(self, *key: object) -> bool:
        """True the first time ``key`` is seen (within the last ``size`` keys)."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


class Pipeline:
    """Claims rows, hands each to its channel, records what became of it."""

    def __init__(
        self,
        settings: Settings,
        channels: dict[str, AnyChannel],
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.session_factory = session_factory
        self.store = OutboxStore(
            session_factory, subscription_columns(), settings.delivery_lease_seconds
        )
        # The events of every row waiting or in a sender when a claim lands (half a
        # batch + the senders) and of the new batch, with room to spare.
        self.events = EventCache(2 * settings.delivery_batch_size + settings.delivery_concurrency)
        # Renewing and recording never overlap: a renewal moves the lease a record
        # statement must match.
        self._leasing = asyncio.Lock()
        self._render_errors = SeenOnce(1024)

    async def aclose(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()

    # -- channels that are down ------------------------------------------------------

    @property
    def down(self) -> list[AnyChannel]:
        """The channels whose server is down as a whole (their rows wait, uncounted)."""
        return [c for c in self.channels.values() if c.outage.down]

    def _channel_down(self, name: str) -> bool:
        channel = self.channels.get(name)
        return channel is not None and channel.outage.down

    def _paused(self) -> list[str]:
        return [c.name for c in self.down]

    # -- claiming --------------------------------------------------------------------

    async def claim(self, limit: int | None = None, *, only: str | None = None) -> list[ClaimedRow]:
        """Lease up to ``limit`` due rows (one statement) and load their events; rows of
        channels that are down are skipped (``only``: that channel's rows alone)."""
        async with self.session_factory() as session, session.begin():
            rows = await self.store.claim(
                session,
                limit or self.settings.delivery_batch_size,
                paused=() if only else self._paused(),
                only=only,
            )
            await self.events.load(session, {r.event_id for r in rows})
        return rows

    async def _probes(self) -> list[ClaimedRow]:
        """One row of each channel that is down and due for a probe."""
        rows: list[ClaimedRow] = []
        for channel in self.down:
            if channel.outage.probe_due():
                for row in await self.claim(1, only=channel.name):
                    row.probe = True
                    rows.append(row)
        return rows

    async def release(self, rows: list[ClaimedRow]) -> None:
        """Give rows whose send never started back at once (shutdown)."""
        await self.store.release(rows)

    async def seconds_until_next(self) -> float | None:
        """How long until there is work: a due row of a channel that is up, or the next
        probe of one that is down. None: nothing pending."""
        waits = [c.outage.until_probe() for c in self.down]
        due = await self.store.seconds_until_next(self._paused())
        if due is not None:
            waits.append(due)
        return min(waits) if waits else None

    # -- the pipeline -----------------------------------------------------------------

    async def run_batch(
        self,
        stop: asyncio.Event | None = None,
        *,
        limit: int | None = None,
        tick: Callable[[], None] | None = None,
    ) -> BatchResult:
        """Claim a batch and deliver it; returns how many rows were claimed and what
        became of them. Once ``stop`` is set no new send starts: the rest go back.
        ``tick`` is called after sends, every ``TICK_SECONDS`` at most (liveness).

        Without a ``limit``, the next batch is claimed while this one is being sent
        (once half of it has gone), up to ``REFILLS`` batches per call."""
        rows = await self._probes()
        batch = await self.claim(limit)
        rows.extend(batch)
        result = BatchResult(claimed=len(rows))
        if rows:
            refill = None
            if limit is None and len(batch) >= self.settings.delivery_batch_size:
                refill = Refill(self.claim, self.settings.delivery_batch_size, REFILLS)
            outcomes = await self.deliver_rows(rows, stop, tick, refill)
            result.claimed += refill.claimed if refill is not None else 0
            result.tally.update("sent" if o.sent else "not sent yet" for o in outcomes)
            result.progressed = sum(1 for o in outcomes if not o.postponed)
        return result

    async def deliver(self, row: ClaimedRow) -> bool:
        """Deliver one claimed row through the pipeline. True when sent."""
        outcomes = await self.deliver_rows([row])
        return bool(outcomes) and outcomes[0].sent

    async def deliver_rows(
        self,
        rows: list[ClaimedRow],
        stop: asyncio.Event | None = None,
        tick: Callable[[], None] | None = None,
        refill: Refill | None = None,
    ) -> list[Outcome]:
        """Send claimed rows with ``delivery_concurrency`` senders, recording outcomes in
        batches (and the rows ``refill`` claims meanwhile), their leases renewed until
        recorded. Stopped or cancelled, it releases the rows not started (and those of
        a channel found down) and records the rest."""
        held = Held()
        held.add(rows)
        if refill is not None:
            refill.held = held
        async with self.store.recording_connection() as connection, self._keeping(held):
            feed = Feed(rows, held, stop=stop, channel_down=self._channel_down, refill=refill)
            recorder = Recorder(
                self.store,
                connection,
                guard=lambda: self._leasing,
                metric_type=self._metric_type,
                payload_of=self.events.payload,
                settled=lambda batch: held.drop(o.row for o in batch),
            )
            senders = [
                asyncio.create_task(self._sender(feed, recorder, tick))
                for _ in range(min(len(rows), self.settings.delivery_concurrency))
            ]
            try:
                await asyncio.gather(*senders)
            except BaseException:
                for task in senders:
                    task.cancel()
                await asyncio.gather(*senders, return_exceptions=True)
                await asyncio.shield(self._finish(recorder, feed, held))
                raise
            await asyncio.shield(self._finish(recorder, feed, held))
        return recorder.done

    @contextlib.asynccontextmanager
    async def _keeping(self, held: Held) -> AsyncIterator[None]:
        """Renew the leases of the held rows until the block ends."""
        keeper = asyncio.create_task(self._keep_leases(held))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep_leases(self, held: Held) -> None:
        every = self.settings.delivery_lease_seconds * RENEW_EVERY
        while True:
            await asyncio.sleep(every)
            async with self._leasing:
                rows = held.current()
                try:
                    kept = await self.store.renew(rows)
                except Exception:
                    log.exception("renewing %d outbox leases failed", len(rows))
                    continue
            lost = len(rows) - len(kept)
            if lost:
                log.warning("%d outbox leases were lost (another worker has the rows)", lost)

    async def _finish(self, recorder: Recorder, feed: Feed, held: Held) -> None:
        await recorder.close()
        unstarted = await feed.unstarted()
        async with self._leasing:
            await self.store.release(unstarted)
        held.drop(unstarted)

    async def _sender(
        self, feed: Feed, recorder: Recorder, tick: Callable[[], None] | None
    ) -> None:
        ticked = 0.0
        while (row := await feed.next()) is not None:
            if self._late(row) and not await self._renew_late(row, feed):
                log.info("notification %s: lease lost while waiting; another has it", row.id)
                continue
            outcome = await self._send(row)
            recorder.add(outcome)
            if tick is not None and (now := time.monotonic()) - ticked >= TICK_SECONDS:
                tick()
                ticked = now

    def _late(self, row: ClaimedRow) -> bool:
        """Not renewed for half a lease (the keeper did not get to run, or the row was
        claimed long before this call): it may be someone else's by now."""
        return time.monotonic() - row.claimed_at > self.settings.delivery_lease_seconds / 2

    async def _renew_late(self, row: ClaimedRow, feed: Feed) -> bool:
        """Renew this row and every late waiting row in one statement; True when
        ``row`` is still ours (rows no longer ours are skipped by the feed)."""
        async with self._leasing:
            if not self._late(row):
                return not row.lost  # renewed meanwhile
            await self.store.renew([row, *(r for r in feed.waiting if self._late(r))])
        return not row.lost

    async def _send(self, row: ClaimedRow) -> Outcome:
        """Render and send one row through its channel; every failure becomes an
        outcome, never an exception."""
        channel = self.channels.get(row.channel)
        if channel is None:
            return self._judge(row, Result(Verdict.failed, f"no channel {row.channel!r}"))
        try:
            message = channel.render(self.events.prepared(row.event_id, channel), row.delivery)
        except Exception as exc:  # a row we cannot render will never render: fail it
            error = f"render error: {type(exc).__name__}: {exc}"
            # One traceback per event, channel and error, not one per recipient (an
            # audience of 100,000 would write 100,000); every row keeps its error.
            if self._render_errors.first(row.event_id, row.channel, type(exc).__name__):
                log.exception("cannot render notification %s (and its like)", row.id)
            else:
                log.warning("cannot render notification %s: %s", row.id, error)
            return self._judge(row, Result(Verdict.failed, error))
        if message is None:
            return self._judge(row, SKIPPED)
        outcome = self._judge(row, await channel.send(message, row.delivery))
        if outcome.deactivate:
            await self.store.deactivate(row.subscription_id)
        return outcome

    def _judge(self, row: ClaimedRow, result: Result) -> Outcome:
        outcome = judge(
            row,
            result,
            max_attempts=self.settings.delivery_max_attempts,
            first_retry=self.settings.delivery_retry_base_seconds,
        )
        if not (outcome.sent or outcome.postponed):
            log.warning(
                "%s notification %s failed (attempt %d%s): %s",
                row.channel,
                row.id,
                row.attempts,
                ", giving up" if outcome.final else "",
                outcome.error,
            )
        return outcome

    def _metric_type(self, row: ClaimedRow) -> str:
        channel = self.channels.get(row.channel)
        kind = row.notification_type
        return channel.metric_type(kind) if channel is not None else f"{row.channel}_{kind}"
