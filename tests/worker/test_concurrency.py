"""The adaptive limit (SPEC §6): cut on 429 and pause for Retry-After, grow back slowly."""

from __future__ import annotations

import asyncio
import time

import pytest

from worker.concurrency import AdaptiveLimiter


async def test_never_more_in_flight_than_the_limit() -> None:
    limiter = AdaptiveLimiter(3)
    in_flight = peak = 0

    async def call() -> None:
        nonlocal in_flight, peak
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1

    await asyncio.gather(*(call() for _ in range(30)))
    assert peak == 3 == limiter.peak_in_flight
    assert limiter.in_flight == 0


def test_a_429_halves_the_limit_down_to_the_floor() -> None:
    limiter = AdaptiveLimiter(8, min_limit=1)
    for expected in (4, 2, 1, 1):
        limiter.on_rate_limited(0)
        assert limiter.limit == expected
    assert limiter.rate_limited == 4


def test_a_burst_of_429s_from_requests_in_flight_together_cuts_once() -> None:
    now = [100.0]
    limiter = AdaptiveLimiter(8, clock=lambda: now[0])
    for _ in range(4):  # four parallel requests all answered 429
        limiter.on_rate_limited(2)
    assert limiter.limit == 4 and limiter.rate_limited == 4
    now[0] += 2.5  # after the pause, a new 429 is new evidence
    limiter.on_rate_limited(2)
    assert limiter.limit == 2


def test_successes_grow_the_limit_one_step_at_a_time_up_to_the_maximum() -> None:
    limiter = AdaptiveLimiter(4, successes_to_grow=5)
    limiter.on_rate_limited(0)
    limiter.on_rate_limited(0)
    assert limiter.limit == 1
    for _ in range(4):
        limiter.on_success()
    assert limiter.limit == 1
    limiter.on_success()
    assert limiter.limit == 2
    for _ in range(100):
        limiter.on_success()
    assert limiter.limit == 4


async def test_retry_after_pauses_every_caller() -> None:
    limiter = AdaptiveLimiter(4)
    pause = limiter.on_rate_limited(0.2)
    assert pause == pytest.approx(0.2)
    start = time.monotonic()
    async with limiter.slot():
        waited = time.monotonic() - start
    assert waited >= 0.18


def test_missing_retry_after_uses_the_default_and_long_ones_are_capped() -> None:
    limiter = AdaptiveLimiter(4, default_pause=5.0, max_pause=60.0)
    assert limiter.on_rate_limited(None) == 5.0
    assert limiter.on_rate_limited(3600) == 60.0
