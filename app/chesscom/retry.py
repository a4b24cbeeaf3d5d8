"""Bounded retries for transient Chess.com failures, on app.backoff's one helper.

The client never retries by itself: the API (a user is waiting) and the worker (a
schedule is waiting) want different budgets, so each caller chooses. Only
:class:`ChessComUnavailable` (5xx, timeouts, garbled bodies) is retried: 404, 403 and
429 propagate at once (retrying cannot fix them, and hammering on a 429 makes it worse;
its ``retry_after`` reaches the caller, who honours it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from app import backoff
from app.chesscom.errors import ChessComUnavailable

T = TypeVar("T")


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    attempts: int = 3,
    base: float = 0.5,
    max_wait: float = 8.0,
) -> T:
    """Await `fn()` up to `attempts` times while it raises ChessComUnavailable: waits of
    `base` doubling up to `max_wait`, plus up to `base` of jitter."""
    return await backoff.with_retries(
        fn, retry_on=ChessComUnavailable, attempts=attempts, first=base, maximum=max_wait
    )
