"""Bounded retries with jittered exponential back-off for transient Chess.com failures.

The client never retries by itself: the API (a user is waiting) and the worker (a
schedule is waiting) want different budgets, so each caller chooses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from app.chesscom.errors import ChessComUnavailable

T = TypeVar("T")


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    attempts: int = 3,
    base: float = 0.5,
    max_wait: float = 8.0,
) -> T:
    """Await `fn()` up to `attempts` times while it raises ChessComUnavailable.

    Other errors (404, 403, 429, ...) propagate at once: retrying cannot fix them, and
    hammering on a 429 makes it worse. The last ChessComUnavailable is re-raised.
    """
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, attempts)),
        # Exponential back-off plus up to `base` of jitter (what wait_exponential_jitter
        # does, spelled so that it works on tenacity 8 and 9 without deprecation warnings).
        wait=wait_exponential(multiplier=base, max=max_wait) + wait_random(0, base),
        retry=retry_if_exception_type(ChessComUnavailable),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
