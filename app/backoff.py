"""Backoff, written once: how long to wait after a failure. No I/O but the waits.

Three shapes, all here so every caller agrees on jitter and caps:

- :class:`Backoff`: a loop that keeps trying something until it works again (the
  database, the LISTEN connection, a mail server that is down, a poll that failed).
  The first wait is short (most outages are restarts), each failure doubles it up to a
  maximum, a success starts again from the first.
- :func:`retry_delay`: an outbox row's next attempt (SPEC §7). Five attempts spread over
  at least 30 minutes, so a receiver or relay that is down for a deploy loses nothing:
  after the 1st, 2nd, 3rd and 4th failed attempt the row waits 5 s, 2 min, 10 min and
  30 min (``first`` times :data:`RETRY_STEPS`), each lengthened by up to a quarter at random.
  The jitter only lengthens, so the spread is never shorter than the schedule says,
  and many rows that failed together do not come back in lockstep.
- :func:`with_retries`: a few quick tries of one call while a caller waits (a profile
  fetched for an API request or a poll): the same doubling, lengthened by up to
  ``first`` at random; an error that retrying cannot fix propagates at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

# The retry schedule in units of the first wait: 5 s, 2 min, 10 min, 30 min by default.
RETRY_STEPS: tuple[float, ...] = (1.0, 24.0, 120.0, 360.0)
RETRY_JITTER = 0.25  # each wait is lengthened by up to this share of itself
DEFAULT_FIRST_RETRY_SECONDS = 5.0

# Doubling stops growing after this many failures (2**63 times `first` is past any
# maximum; a bigger exponent would overflow a float).
MAX_DOUBLINGS = 63

Random = Callable[[], float]  # uniform in [0, 1)
T = TypeVar("T")


def retry_delay(
    attempts: int,
    *,
    first: float = DEFAULT_FIRST_RETRY_SECONDS,
    jitter: float = RETRY_JITTER,
    rand: Random = random.random,
) -> float:
    """Seconds before the next attempt of a row that has failed ``attempts`` times
    (1 after its first attempt). Beyond the schedule the last step repeats."""
    step = RETRY_STEPS[min(max(attempts, 1), len(RETRY_STEPS)) - 1]
    return first * step * (1.0 + jitter * rand())


def retry_span(attempts: int, *, first: float = DEFAULT_FIRST_RETRY_SECONDS) -> float:
    """The shortest time from a row's first attempt to its ``attempts``-th (no jitter)."""
    return sum(retry_delay(n, first=first, jitter=0.0) for n in range(1, attempts))


def doubling(failures: int, *, first: float, maximum: float) -> float:
    """The wait after ``failures`` (≥ 1) failures in a row: ``first``, doubling, capped."""
    return min(maximum, first * 2.0 ** min(max(0, failures - 1), MAX_DOUBLINGS))


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    retry_on: type[Exception] | tuple[type[Exception], ...],
    attempts: int,
    first: float,
    maximum: float,
    rand: Random = random.random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Await ``fn()`` up to ``attempts`` times while it raises ``retry_on``, waiting
    :func:`doubling` (``first`` to ``maximum``) plus up to ``first`` at random between
    tries. Other errors propagate at once; after the last try its error is re-raised."""
    failures = 0
    while True:
        try:
            return await fn()
        except retry_on:
            failures += 1
            if failures >= max(1, attempts):
                raise
        await sleep(doubling(failures, first=first, maximum=maximum) + first * rand())


@dataclass
class Backoff:
    """Waits between tries of something that is failing: :meth:`failed` returns the
    next wait (``first`` doubling to ``maximum``, jittered down to ``1 - jitter`` of it,
    so many waiters do not retry in lockstep), :meth:`succeeded` starts again."""

    first: float
    maximum: float
    jitter: float = 0.0
    rand: Random = random.random
    failures: int = 0
    delay: float = 0.0  # the wait the latest failure asked for (0 while none)

    def failed(self) -> float:
        """Count a failure; returns how long to wait before the next try."""
        self.failures += 1
        delay = doubling(self.failures, first=self.first, maximum=self.maximum)
        self.delay = delay * (1.0 - self.jitter * self.rand())
        return self.delay

    def succeeded(self) -> None:
        self.failures = 0
        self.delay = 0.0

    @property
    def failing(self) -> bool:
        return self.failures > 0


class Outage:
    """A medium's server down as a whole (connection refused, no greeting): its rows wait
    uncounted while one probes, ``first`` doubling to ``maximum`` between probes."""

    def __init__(
        self, first: float = 1.0, maximum: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._backoff = Backoff(first, maximum)
        self.down_since: float | None = None  # on `clock`
        self.cause: str | None = None
        self._probe_at = 0.0  # when the next probe may go, on `clock`

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, cause: str) -> float:
        """The server could not be reached; returns how long its rows wait now. Sends
        that were under way when it went down find the same pause (it doubles once per
        probe, not once per send)."""
        now = self._clock()
        if self.down_since is None:
            self.down_since = now
        elif now < self._probe_at:
            return self._probe_at - now
        self.cause = cause
        wait = self._backoff.failed()
        self._probe_at = now + wait
        return wait

    def recovered(self) -> float | None:
        """The server answered; returns how long it was down (None: it was not)."""
        if self.down_since is None:
            return None
        down = self._clock() - self.down_since
        self.down_since, self.cause = None, None
        self._backoff.succeeded()
        return down

    @property
    def pause(self) -> float:
        """How long rows wait between probes now (0 while up)."""
        return self._backoff.delay

    def probe_due(self) -> bool:
        """Down, and its pause is over: one row may try the server."""
        return self.down and self._clock() >= self._probe_at

    def until_probe(self) -> float:
        return max(0.0, self._probe_at - self._clock()) if self.down else 0.0

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else self._clock() - self.down_since
