"""Recording outcomes in batches, and the delivery metrics of what was recorded.

One statement records many rows: as soon as ``RECORD_BATCH`` outcomes wait, or when the
oldest has waited ``RECORD_INTERVAL_SECONDS``. So a worker killed at any moment leaves
at most the sends in progress plus the last quarter second's sends, sent but not
recorded (those are sent again once their lease ends: the only doubles a crash can
cause, SPEC §7).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from worker import metrics
from worker.outbox.store import ClaimedRow, OutboxStore, Outcome

log = logging.getLogger(__name__)

RECORD_BATCH = 100
RECORD_INTERVAL_SECONDS = 0.25


class Recorder:
    def __init__(
        self,
        store: OutboxStore,
        connection: AsyncConnection | None,
        *,
        guard: Callable[[], contextlib.AbstractAsyncContextManager[object]],
        metric_type: Callable[[ClaimedRow], str],
        payload_of: Callable[[int], dict[str, object]],
        settled: Callable[[list[Outcome]], None],
    ) -> None:
        self._store = store
        self._connection = connection
        self._guard = guard  # held while recording: no lease renewal runs meanwhile
        self._metric_type = metric_type
        self._payload_of = payload_of
        self._settled = settled  # told of every batch tried: its rows are no longer held
        self._buffer: list[Outcome] = []
        self._full = asyncio.Event()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None
        self.done: list[Outcome] = []

    @property
    def pending(self) -> list[Outcome]:
        """Outcomes waiting to be recorded (their rows are still leased by us)."""
        return self._buffer

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
            async with self._guard():
                batch, self._buffer = self._buffer, []
                try:
                    recorded = await self._store.record(batch, self._connection)
                except Exception:
                    # Unrecorded rows are no longer renewed: once their lease ends they
                    # are sent again.
                    log.exception("recording %d delivery outcomes failed", len(batch))
                    continue
                finally:
                    self._settled(batch)
            if recorded < len(batch):
                # Their leases ran out (a stall longer than a lease): another claim has
                # those rows and sends them again, the one double SPEC §7 allows.
                log.warning(
                    "%d of %d delivery outcomes not recorded: their leases had run out",
                    len(batch) - recorded,
                    len(batch),
                )
            self._observe(batch)

    def _observe(self, batch: list[Outcome]) -> None:
        """Metrics of a recorded batch: counters added to once per kind of outcome, the
        latency histogram once per sent message (its start looked up once per event)."""
        counts = Counter((self._metric_type(o.row), o.label) for o in batch)
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
                since[key] = metrics.visible_since(
                    row.notification_type, self._payload_of(row.event_id)
                )
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
