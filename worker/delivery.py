"""Delivering the outbox (SPEC §7) as a pipeline: claim a batch, render, send, record.

- **Claim** a batch in one statement (``SKIP LOCKED``): it takes a lease
  (``locked_until``) and counts the attempt.
- **Render** what all recipients of an event share once (:func:`app.emails.messages.
  prepare`, cached by event in a bounded LRU); per row only the recipient's address,
  Message-ID and signed links are filled in.
- **Send** with ``delivery_concurrency`` senders over the mailer's reused connections.
  Once half a batch has gone, the next is claimed in the background and joins the
  queue, so the connections never stand idle while a claim runs (one and a half
  batches wait at most).
- **Record** outcomes in batches: one ``UPDATE … FROM unnest(…)`` per batch, and only
  for rows whose lease is still the one we hold, so only the lease holder records a
  send. Outcomes are recorded ``RECORD_BATCH`` at a time or after
  ``RECORD_INTERVAL_SECONDS``, so a worker killed at any point can double only the
  messages in flight: being sent, or sent and not yet recorded (at most two batches).

A row that waited past half its lease is taken afresh before its send (all waiting
rows of the batch in one statement), but only if it is still ours: one whose lease ran
out may have been claimed by another worker, which sends it. Memory is bounded by the
batch size and the event cache, whatever the audience: the cache holds twice a batch's
worth of events, and the rows waiting (one and a half batches) use no more than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.backoff import retry_delay
from app.channels.base import Delivery, Event, Result, Verdict
from app.channels.registry import AnyChannel, subscription_columns
from app.config import Settings
from app.notifications.payloads import load_payload
from worker import metrics

log = logging.getLogger(__name__)

EVENT_CACHE_SIZE = 256  # prepared events kept (at least two batches' worth of events)
# Outcomes are recorded RECORD_BATCH at a time, or after RECORD_INTERVAL_SECONDS at most.
RECORD_BATCH = 100
RECORD_INTERVAL_SECONDS = 0.25
# The worker's liveness is ticked after a send at most this often (not per message).
TICK_SECONDS = 0.1
# Batches claimed while one is being sent, per run_batch call (then the runner's loop
# looks at the mail server and the stop signal before claiming again).
REFILLS = 8
# A paused row (nothing sent) waits this long when its channel did not say.
PAUSE_SECONDS = 1.0
SKIPPED = Result(Verdict.skipped, "skipped: subscription no longer active")


@dataclass(slots=True)
class ClaimedRow:
    """A leased outbox row: what the pipeline needs, and the channel's :class:`Delivery`."""

    id: int
    event_id: int
    channel: str
    locked_until: datetime  # the lease we hold: proof the row is still ours
    delivery: Delivery
    claimed_at: float = field(default_factory=time.monotonic)

    @property
    def subscription_id(self) -> int:
        return self.delivery.subscription_id

    @property
    def notification_type(self) -> str:
        return self.delivery.kind

    @property
    def attempts(self) -> int:
        return self.delivery.attempts


@dataclass(frozen=True, slots=True)
class Outcome:
    row: ClaimedRow
    sent: bool
    final: bool = False  # not sent and never will be: status 'failed'
    error: str | None = None
    delay: float = 0.0  # before the next attempt when neither sent nor final
    postponed: bool = False  # not sent at all (server down, host on hold): not counted
    halts: bool = False  # the channel's server is down: the batch's other rows wait
    label: str = "sent"  # the metric's outcome
    deactivate: bool = False  # the address is gone: its subscription ends


@dataclass(slots=True)
class BatchResult:
    claimed: int = 0
    tally: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Event:
    event: Event | None  # None: the payload cannot be read
    payload: dict[str, Any]  # as stored (for metrics)
    error: str | None = None  # why it cannot be rendered (every row of it fails)
    # What each channel prepared from it (or why it could not), made on first use.
    prepared: dict[str, Any] = field(default_factory=dict)


class _PrepareFailed:
    def __init__(self, error: str) -> None:
        self.error = error


def _claim_statement(columns: tuple[str, ...]) -> Any:
    """The one claim (SPEC §7): due rows in ``next_attempt_at, id`` order, leased and
    counted in one statement, with the subscription columns the channels read."""
    extra = "".join(f", s.{c}" for c in columns if c.isidentifier())
    return text(
        f"""
WITH due AS (
    SELECT n.id FROM notification_logs n
    WHERE n.status = 'pending' AND n.next_attempt_at <= now()
      AND (n.locked_until IS NULL OR n.locked_until < now())
    ORDER BY n.next_attempt_at, n.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_logs n
SET locked_until = now() + make_interval(secs => :lease), attempts = n.attempts + 1
FROM due, email_subscriptions s
WHERE n.id = due.id AND s.id = n.subscription_id
RETURNING n.id, n.subscription_id, n.event_id, n.notification_type, n.attempts,
          s.is_active, s.confirmed_at IS NOT NULL AS confirmed, n.locked_until,
          s.channel{extra}
"""
    )


TARGET_COLUMNS = subscription_columns()
_CLAIM = _claim_statement(TARGET_COLUMNS)

_EVENTS = text(
    """
SELECT e.id, e.kind, e.key, e.payload, e.occurred_at, p.username, p.name
FROM events e LEFT JOIN players p ON p.player_id = e.player_id
WHERE e.id = ANY(CAST(:ids AS bigint[]))
"""
)

# Each statement below touches only rows whose lease is still the one we claimed.
_LEASED = "FROM unnest(CAST(:ids AS bigint[]), CAST(:leases AS timestamptz[])) AS r(id, lease)"

_RENEW = text(
    f"""
UPDATE notification_logs n SET locked_until = now() + make_interval(secs => :lease)
{_LEASED}
WHERE n.id = r.id AND n.status = 'pending' AND n.locked_until = r.lease
RETURNING n.id, n.locked_until
"""
)

_RECORD = text(
    """
UPDATE notification_logs n
SET status = CASE WHEN o.sent THEN 'sent' WHEN o.final THEN 'failed' ELSE 'pending' END,
    success = o.sent,
    attempts = CASE WHEN o.postponed THEN greatest(n.attempts - 1, 0) ELSE n.attempts END,
    sent_at = CASE WHEN o.sent THEN now() ELSE n.sent_at END,
    locked_until = NULL,
    error_message = o.error,
    next_attempt_at = CASE WHEN o.sent THEN n.next_attempt_at
                           ELSE now() + make_interval(secs => o.delay) END
FROM unnest(CAST(:ids AS bigint[]), CAST(:leases AS timestamptz[]), CAST(:sent AS boolean[]),
            CAST(:final AS boolean[]), CAST(:errors AS text[]), CAST(:delays AS float8[]),
            CAST(:postponed AS boolean[]))
     AS o(id, lease, sent, final, error, delay, postponed)
WHERE n.id = o.id AND n.status = 'pending' AND n.locked_until = o.lease
"""
)

_RELEASE = text(
    f"""
UPDATE notification_logs n SET locked_until = NULL, attempts = greatest(n.attempts - 1, 0)
{_LEASED}
WHERE n.id = r.id AND n.status = 'pending' AND n.locked_until = r.lease
"""
)

# A channel found the address gone (a webhook's 404/410): its subscription ends.
_DEACTIVATE = text(
    """
UPDATE email_subscriptions SET is_active = false, unsubscribed_at = now(), updated_at = now()
WHERE id = :subscription_id AND is_active
"""
)

_NEXT_WORK = text(
    """
SELECT extract(epoch FROM min(greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)))
       - now())
FROM notification_logs WHERE status = 'pending'
"""
)


class Deliverer:
    """The outbox pipeline: claims rows, hands each to its channel, records outcomes."""

    def __init__(
        self,
        settings: Settings,
        channels: dict[str, AnyChannel],
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.session_factory = session_factory
        self._events: OrderedDict[int, _Event] = OrderedDict()
        self._renewing = asyncio.Lock()
        # The events of every row waiting or in a sender when a claim lands (half a
        # batch + the senders) and of the new batch, with room to spare.
        self._cache_size = max(
            EVENT_CACHE_SIZE, 2 * settings.delivery_batch_size + settings.delivery_concurrency
        )

    async def aclose(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()

    @property
    def down(self) -> list[AnyChannel]:
        """The channels whose server is down as a whole (their rows wait, uncounted)."""
        return [c for c in self.channels.values() if c.outage.down]

    # -- the database side ------------------------------------------------------

    async def claim(self, limit: int | None = None) -> list[ClaimedRow]:
        """Lease up to ``limit`` due rows (one statement) and load their events."""
        async with self.session_factory() as session, session.begin():
            result = await session.execute(
                _CLAIM,
                {
                    "limit": limit or self.settings.delivery_batch_size,
                    "lease": self.settings.delivery_lease_seconds,
                },
            )
            rows = [_claimed(r) for r in result]
            wanted = {r.event_id for r in rows}
            for event_id in wanted & self._events.keys():
                self._events.move_to_end(event_id)  # in use: newest, never evicted below
            missing = wanted - self._events.keys()
            if missing:
                found = await session.execute(_EVENTS, {"ids": sorted(missing)})
                for event in found:
                    self._remember(event.id, self._prepare(event))
        return rows

    async def release(self, rows: list[ClaimedRow]) -> None:
        """Give rows whose send never started back at once (shutdown)."""
        if rows:
            async with self.session_factory() as session, session.begin():
                await session.execute(_RELEASE, _leases(rows))

    async def seconds_until_next(self) -> float | None:
        async with self.session_factory() as session:
            value = await session.scalar(_NEXT_WORK)
        return None if value is None else max(0.0, float(value))

    async def record(
        self, outcomes: list[Outcome], connection: AsyncConnection | None = None
    ) -> None:
        """Record a batch of outcomes in one statement (lease holders only)."""
        if not outcomes:
            return
        params = {
            **_leases([o.row for o in outcomes]),
            "sent": [o.sent for o in outcomes],
            "final": [o.final for o in outcomes],
            "errors": [o.error for o in outcomes],
            "delays": [o.delay for o in outcomes],
            "postponed": [o.postponed for o in outcomes],
        }
        if connection is not None:
            await connection.execute(_RECORD, params)  # one statement, autocommitted
            return
        async with self.session_factory() as session, session.begin():
            await session.execute(_RECORD, params)

    @contextlib.asynccontextmanager
    async def _recording_connection(self) -> AsyncIterator[AsyncConnection | None]:
        """One connection held for a batch's recording rounds, in autocommit: each round
        is then one statement and one round trip (no checkout, ping, BEGIN, COMMIT)."""
        engine = self.session_factory.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            yield None
            return
        async with engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def _renew(self, rows: list[ClaimedRow]) -> set[int]:
        """Take the lease afresh for rows still ours; returns their ids."""
        async with self.session_factory() as session, session.begin():
            result = await session.execute(
                _RENEW, {**_leases(rows), "lease": self.settings.delivery_lease_seconds}
            )
            renewed = {r.id: r.locked_until for r in result}
        now = time.monotonic()
        for row in rows:
            if row.id in renewed:
                row.locked_until = renewed[row.id]
                row.claimed_at = now
        return set(renewed)

    # -- events: rendered once, kept in a bounded cache ---------------------------

    def _prepare(self, event: Any) -> _Event:
        payload = event.payload or {}
        try:
            loaded = Event(
                id=event.id,
                kind=event.kind,
                key=event.key,
                payload=load_payload(event.kind, payload),
                occurred_at=event.occurred_at,
                player_username=event.username,
                player_name=event.name,
            )
        except Exception as exc:  # a payload that cannot be read never will: fail its rows
            log.exception("cannot read event %s", event.id)
            return _Event(None, payload, f"bad payload: {exc}"[:500])
        return _Event(loaded, payload)

    def _remember(self, event_id: int, event: _Event) -> None:
        self._events[event_id] = event
        self._events.move_to_end(event_id)
        while len(self._events) > self._cache_size:
            self._events.popitem(last=False)

    # -- the pipeline -----------------------------------------------------------

    async def run_batch(
        self,
        stop: asyncio.Event | None = None,
        *,
        limit: int | None = None,
        tick: Callable[[], None] | None = None,
    ) -> BatchResult:
        """Claim a batch and deliver it; returns how many rows were claimed and what
        became of them. Once ``stop`` is set no new send starts: the rest go back.
        ``tick`` is called after sends, every ``TICK_SECONDS`` at most (the worker's
        liveness).

        Without a ``limit``, the next batch is claimed while this one is being sent
        (once half of it has gone), so the connections never wait for a claim, up to
        ``REFILLS`` batches per call."""
        rows = await self.claim(limit)
        result = BatchResult(claimed=len(rows))
        if rows:
            refill = None
            if limit is None and len(rows) >= self.settings.delivery_batch_size:
                refill = _Refill(self, REFILLS)
            outcomes = await self.deliver_rows(rows, stop, tick, refill)
            result.claimed += refill.claimed if refill is not None else 0
            result.tally.update("sent" if o.sent else "not sent yet" for o in outcomes)
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
        refill: _Refill | None = None,
    ) -> list[Outcome]:
        """Send claimed rows with ``delivery_concurrency`` senders, recording outcomes in
        batches (and the rows ``refill`` claims meanwhile). Stopped or cancelled, or once
        the mail server is found unreachable, it releases the rows not started and
        records the rest."""
        async with self._recording_connection() as connection:
            feed = _Feed(rows, _Halt(stop), refill)
            recorder = _Recorder(self, connection)
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
                await asyncio.shield(self._finish(recorder, feed))
                raise
            await asyncio.shield(self._finish(recorder, feed))
        return recorder.done

    async def _finish(self, recorder: _Recorder, feed: _Feed) -> None:
        await recorder.close()
        await self.release(await feed.unstarted())

    async def _sender(
        self, feed: _Feed, recorder: _Recorder, tick: Callable[[], None] | None
    ) -> None:
        half_lease = self.settings.delivery_lease_seconds / 2
        waiting = feed.waiting
        ticked = 0.0
        while (row := await feed.next()) is not None:
            late = time.monotonic() - row.claimed_at > half_lease
            if late and not await self._renew_waiting(row, waiting, half_lease):
                log.info("notification %s: lease lost while waiting; another has it", row.id)
                continue
            outcome = await self._send(row)
            recorder.add(outcome)
            if tick is not None and (now := time.monotonic()) - ticked >= TICK_SECONDS:
                tick()
                ticked = now
            if outcome.halts:
                feed.halt.server_down = True  # the rest wait (released); one row probes it

    async def _renew_waiting(
        self, row: ClaimedRow, waiting: deque[ClaimedRow], half_lease: float
    ) -> bool:
        """Renew this row and every waiting row past half its lease, in one statement;
        rows no longer ours leave the queue. True when ``row`` is still ours."""
        async with self._renewing:
            if time.monotonic() - row.claimed_at <= half_lease:
                return True  # another sender renewed it meanwhile
            late = [row, *(r for r in waiting if time.monotonic() - r.claimed_at > half_lease)]
            kept = await self._renew(late)
            lost = {r.id for r in late} - kept
            if lost:
                remaining = [r for r in waiting if r.id not in lost]
                waiting.clear()
                waiting.extend(remaining)
            return row.id in kept

    async def _send(self, row: ClaimedRow) -> Outcome:
        """Render and send one row through its channel; every failure becomes an
        outcome, never an exception."""
        channel = self.channels.get(row.channel)
        if channel is None:
            return self._judge(row, Result(Verdict.failed, f"no channel {row.channel!r}"))
        try:
            message = channel.render(self._prepared(row, channel), row.delivery)
        except Exception as exc:  # a row we cannot render will never render: fail it
            log.exception("cannot render notification %s", row.id)
            error = f"render error: {type(exc).__name__}: {exc}"
            return self._judge(row, Result(Verdict.failed, error))
        if message is None:
            return self._judge(row, SKIPPED)
        result = await channel.send(message, row.delivery)
        outcome = self._judge(row, result)
        if outcome.deactivate:
            await self._deactivate(row.subscription_id)
        if result.verdict is Verdict.paused and channel.outage.down:
            return replace(outcome, halts=True)
        return outcome

    def _judge(self, row: ClaimedRow, result: Result) -> Outcome:
        """What a channel's verdict means for the row (SPEC §7): the retry policy."""
        verdict = result.verdict
        if verdict is Verdict.delivered:
            return Outcome(row, sent=True)
        error = (result.error or verdict.value)[:1000]
        if verdict is Verdict.paused:
            delay = result.retry_after if result.retry_after is not None else PAUSE_SECONDS
            return Outcome(
                row, sent=False, postponed=True, delay=delay, error=error, label="postponed"
            )
        if verdict is Verdict.skipped:
            return Outcome(row, sent=False, final=True, error=error, label="skipped")
        final = verdict is not Verdict.retry or row.attempts >= self.settings.delivery_max_attempts
        if verdict is Verdict.gone:
            error = f"gone: {error}"[:1000]
        log.warning(
            "%s notification %s failed (attempt %d%s): %s",
            row.channel,
            row.id,
            row.attempts,
            ", giving up" if final else "",
            error,
        )
        delay = 0.0
        if not final:
            delay = result.retry_after or retry_delay(
                row.attempts, first=self.settings.delivery_retry_base_seconds
            )
        return Outcome(
            row, sent=False, final=final, delay=delay, error=error,
            label="failed" if final else "retry", deactivate=verdict is Verdict.gone,
        )  # fmt: skip

    def _prepared(self, row: ClaimedRow, channel: AnyChannel) -> Any:
        """What ``channel`` made of the row's event, made once per event and channel."""
        event = self._events.get(row.event_id)
        if event is None:
            raise LookupError(f"event {row.event_id} is gone")
        if event.event is None:
            raise ValueError(event.error or "event cannot be read")
        prepared = event.prepared.get(channel.name)
        if prepared is None:
            try:
                prepared = channel.prepare(event.event)
            except Exception as exc:  # what cannot be prepared never will: fail its rows
                log.exception("cannot prepare event %s for %s", row.event_id, channel.name)
                prepared = _PrepareFailed(f"{type(exc).__name__}: {exc}")
            event.prepared[channel.name] = prepared
        if isinstance(prepared, _PrepareFailed):
            raise ValueError(prepared.error)
        return prepared

    async def _deactivate(self, subscription_id: int) -> None:
        """An address the channel found gone (a webhook's 404/410): its subscription ends."""
        async with self.session_factory() as session, session.begin():
            await session.execute(_DEACTIVATE, {"subscription_id": subscription_id})

    def metric_type(self, row: ClaimedRow) -> str:
        channel = self.channels.get(row.channel)
        kind = row.notification_type
        return channel.metric_type(kind) if channel is not None else f"{row.channel}_{kind}"

    def payload_of(self, event_id: int) -> dict[str, Any]:
        """The raw payload of a cached event (for metrics); empty when not cached."""
        event = self._events.get(event_id)
        return event.payload if event is not None else {}


class _Refill:
    """Claims the next batches while the current one is being sent (at most ``times``)."""

    def __init__(self, deliverer: Deliverer, times: int) -> None:
        self._deliverer = deliverer
        self._left = times
        self.claimed = 0

    @property
    def exhausted(self) -> bool:
        return self._left <= 0

    async def claim(self) -> list[ClaimedRow]:
        self._left -= 1
        rows = await self._deliverer.claim()
        self.claimed += len(rows)
        if len(rows) < self._deliverer.settings.delivery_batch_size:
            self.stop()  # the outbox is drained: no more claims until the next call
        return rows

    def stop(self) -> None:
        self._left = 0


class _Feed:
    """The rows waiting for a sender. Once no more than half a batch waits, the next
    batch is claimed in the background and joins the queue, so it holds one and a half
    batches at most however large the audience."""

    def __init__(self, rows: list[ClaimedRow], halt: _Halt, refill: _Refill | None) -> None:
        self.waiting = deque(rows)
        self.halt = halt
        self._refill = refill
        self._low_water = len(rows) // 2
        self._claiming: asyncio.Task[None] | None = None

    async def next(self) -> ClaimedRow | None:
        """The next row to send, or None once there is none (or the senders must stop)."""
        while not self.halt.halted:
            if self.waiting:
                row = self.waiting.popleft()
                if len(self.waiting) <= self._low_water:
                    self._start_claiming()
                return row
            if self._claiming is None:
                return None
            # Waiting must not cancel the claim if this sender is cancelled.
            await asyncio.wait({self._claiming})
        return None

    def _start_claiming(self) -> None:
        refill = self._refill
        if refill is None or refill.exhausted or self.halt.halted:
            return
        if self._claiming is None or self._claiming.done():
            self._claiming = asyncio.create_task(self._claim(refill))

    async def _claim(self, refill: _Refill) -> None:
        try:
            self.waiting.extend(await refill.claim())
        except Exception:
            log.exception("claiming the next outbox batch failed")
            refill.stop()  # the rows already claimed are sent; the runner claims again
        finally:
            self._claiming = None

    async def unstarted(self) -> list[ClaimedRow]:
        """The rows no sender took, once a claim in progress has landed."""
        if self._claiming is not None:
            await asyncio.wait({self._claiming})
        rows = list(self.waiting)
        self.waiting.clear()
        return rows


class _Halt:
    """Why senders stop taking rows: the worker stops, or the mail server is down."""

    def __init__(self, stop: asyncio.Event | None) -> None:
        self.stop = stop
        self.server_down = False

    @property
    def halted(self) -> bool:
        return self.server_down or (self.stop is not None and self.stop.is_set())


class _Recorder:
    """Collects outcomes and records them in batches, one statement per batch: as soon
    as RECORD_BATCH outcomes wait, or when the oldest has waited RECORD_INTERVAL_SECONDS.
    So one statement records many rows, and a worker killed at any moment leaves at most
    the sends in progress plus two recording batches sent but not recorded (those are
    sent again once their lease ends: the only doubles a crash can cause)."""

    def __init__(self, deliverer: Deliverer, connection: AsyncConnection | None) -> None:
        self._deliverer = deliverer
        self._connection = connection
        self._buffer: list[Outcome] = []
        self._full = asyncio.Event()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None
        self.done: list[Outcome] = []

    def add(self, outcome: Outcome) -> None:
        self._buffer.append(outcome)
        if len(self._buffer) >= RECORD_BATCH:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._buffer:
            if len(self._buffer) < RECORD_BATCH and not self._closing:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), RECORD_INTERVAL_SECONDS)
            batch, self._buffer = self._buffer, []
            try:
                await self._deliverer.record(batch, self._connection)
            except Exception:
                # Unrecorded rows stay leased; once the lease ends they are sent again.
                log.exception("recording %d delivery outcomes failed", len(batch))
                continue
            self._observe(batch)

    def _observe(self, batch: list[Outcome]) -> None:
        """Metrics of a recorded batch: counters added to once per kind of outcome, the
        latency histogram once per sent email (its start looked up once per event)."""
        counts = Counter((self._deliverer.metric_type(o.row), o.label) for o in batch)
        for (kind, label), n in counts.items():
            metrics.EMAILS.labels(kind, label).inc(n)
        now = time.time()
        since: dict[tuple[str, int], float | None] = {}
        for outcome in batch:
            if not outcome.sent:
                continue
            row = outcome.row
            key = (row.notification_type, row.event_id)
            if key not in since:
                payload = self._deliverer.payload_of(row.event_id)
                since[key] = metrics.visible_since(row.notification_type, payload)
            start = since[key]
            if start is not None:
                metrics.DELIVERY_LATENCY.observe(max(0.0, now - start))
        self.done.extend(batch)

    async def close(self) -> None:
        """Record whatever is left, now."""
        self._closing = True
        self._full.set()
        if self._flusher is not None:
            await self._flusher
        await self._flush_loop()


def _claimed(r: Any) -> ClaimedRow:
    """A claimed row as the pipeline holds it: the channel's part in its Delivery."""
    return ClaimedRow(
        id=r.id,
        event_id=r.event_id,
        channel=r.channel,
        locked_until=r.locked_until,
        delivery=Delivery(
            row_id=r.id,
            subscription_id=r.subscription_id,
            kind=r.notification_type,
            attempts=r.attempts,
            is_active=r.is_active,
            confirmed=r.confirmed,
            target={c: getattr(r, c) for c in TARGET_COLUMNS},
        ),
    )


def _leases(rows: list[ClaimedRow]) -> dict[str, Any]:
    return {"ids": [r.id for r in rows], "leases": [r.locked_until for r in rows]}
