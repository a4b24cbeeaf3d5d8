"""An adaptive concurrency limit for calls to Chess.com (AIMD).

Chess.com serves serial requests without limit and answers parallel ones with 429
when it is under load. So the worker starts at POLL_CONCURRENCY parallel requests,
halves the limit and pauses everyone for Retry-After on a 429 (once per burst of 429s),
and adds one slot back after a run of successes: multiplicative decrease, additive
increase.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class AdaptiveLimiter:
    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        successes_to_grow: int = 20,
        default_pause: float = 5.0,
        max_pause: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_limit < 1 or min_limit < 1 or min_limit > max_limit:
            raise ValueError("need 1 <= min_limit <= max_limit")
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.limit = max_limit
        self.in_flight = 0
        self.peak_in_flight = 0
        self.rate_limited = 0
        self._successes_to_grow = successes_to_grow
        self._successes = 0
        self._default_pause = default_pause
        self._max_pause = max_pause
        self._paused_until = 0.0
        self._clock = clock
        self._cond = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of `limit` slots for the duration of one request."""
        await self._acquire()
        try:
            yield
        finally:
            async with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()

    async def _acquire(self) -> None:
        async with self._cond:
            while True:
                pause = self._paused_until - self._clock()
                if pause > 0:
                    # Sleep out the pause without holding the lock; re-check afterwards.
                    self._cond.release()
                    try:
                        await asyncio.sleep(pause)
                    finally:
                        await self._cond.acquire()
                    continue
                if self.in_flight < self.limit:
                    self.in_flight += 1
                    self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                    return
                await self._cond.wait()

    def on_success(self) -> None:
        self._successes += 1
        if self._successes >= self._successes_to_grow and self.limit < self.max_limit:
            # Callers report success while still holding their slot; its release
            # wakes the waiters, who then see the larger limit.
            self.limit += 1
            self._successes = 0

    def on_rate_limited(self, retry_after: float | None) -> float:
        """Cut the limit, pause every caller; returns the pause in seconds."""
        self.rate_limited += 1
        self._successes = 0
        if self._clock() >= self._paused_until:
            # One cut per congestion event: the other requests in flight when the
            # first 429 came back get theirs too, and that is no new evidence.
            self.limit = max(self.min_limit, self.limit // 2)
        pause = min(
            self._max_pause, retry_after if retry_after is not None else self._default_pause
        )
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, pause))
        return pause
