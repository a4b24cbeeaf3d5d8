"""The rows waiting for a sender, refilled in the background so senders never wait
for a claim, and the rows this pipeline holds a lease on (renewed while held)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from worker.outbox.store import ClaimedRow

log = logging.getLogger(__name__)


class Held:
    """The rows claimed and not yet recorded or released: the lease keeper renews
    these, however long they wait or their send takes."""

    def __init__(self) -> None:
        self.rows: dict[int, ClaimedRow] = {}

    def add(self, rows: Iterable[ClaimedRow]) -> None:
        for row in rows:
            self.rows[row.id] = row

    def drop(self, rows: Iterable[ClaimedRow]) -> None:
        for row in rows:
            self.rows.pop(row.id, None)

    def current(self) -> list[ClaimedRow]:
        return [row for row in self.rows.values() if not row.lost]


class Refill:
    """Claims the next batches while the current one is being sent (at most ``times``)."""

    def __init__(
        self, claim: Callable[[], Awaitable[list[ClaimedRow]]], batch_size: int, times: int
    ) -> None:
        self._claim = claim
        self._batch_size = batch_size
        self._left = times
        self.claimed = 0
        self.held: Held | None = None  # where the rows it claims are held

    @property
    def exhausted(self) -> bool:
        return self._left <= 0

    async def claim(self) -> list[ClaimedRow]:
        self._left -= 1
        rows = await self._claim()
        self.claimed += len(rows)
        if self.held is not None:
            self.held.add(rows)
        if len(rows) < self._batch_size:
            self.stop()  # the outbox is drained: no more claims until the next call
        return rows

    def stop(self) -> None:
        self._left = 0


class Feed:
    """The rows waiting for a sender. Once no more than half a batch waits, the next
    batch is claimed in the background and joins the queue, so it holds one and a half
    batches at most however large the audience.

    A row is not handed out when the worker stops, when its lease was lost (another
    worker has it), or when its channel's server is down (``stalled``: such rows are
    given back, uncounted, unless it is the row that probes the server)."""

    def __init__(
        self,
        rows: list[ClaimedRow],
        held: Held,
        *,
        stop: asyncio.Event | None,
        channel_down: Callable[[str], bool],
        refill: Refill | None,
    ) -> None:
        self.waiting = deque(rows)
        self.stalled: list[ClaimedRow] = []
        self._held = held
        self._stop = stop
        self._channel_down = channel_down
        self._refill = refill
        self._low_water = len(rows) // 2
        self._claiming: asyncio.Task[None] | None = None

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def next(self) -> ClaimedRow | None:
        """The next row to send, or None once there is none (or the senders must stop)."""
        while not self.stopped:
            if self.waiting:
                row = self.waiting.popleft()
                if len(self.waiting) <= self._low_water:
                    self._start_claiming()
                if row.lost:
                    log.info("notification %s: lease lost while waiting; another has it", row.id)
                    self._held.drop((row,))
                    continue
                if not row.probe and self._channel_down(row.channel):
                    self.stalled.append(row)
                    continue
                return row
            if self._claiming is None:
                return None
            # Waiting must not cancel the claim if this sender is cancelled.
            await asyncio.wait({self._claiming})
        return None

    def _start_claiming(self) -> None:
        refill = self._refill
        if refill is None or refill.exhausted or self.stopped:
            return
        if self._claiming is None or self._claiming.done():
            self._claiming = asyncio.create_task(self._claim(refill))

    async def _claim(self, refill: Refill) -> None:
        try:
            self.waiting.extend(await refill.claim())
        except Exception:
            log.exception("claiming the next outbox batch failed")
            refill.stop()  # the rows already claimed are sent; the runner claims again
        finally:
            self._claiming = None

    async def unstarted(self) -> list[ClaimedRow]:
        """The rows no sender took (or stalled), once a claim in progress has landed."""
        if self._claiming is not None:
            await asyncio.wait({self._claiming})
        rows = [*self.stalled, *(r for r in self.waiting if not r.lost)]
        self.waiting.clear()
        self.stalled.clear()
        return rows
