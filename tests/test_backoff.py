"""Backoff, written once (app.backoff): the outbox's retry schedule (SPEC §7) and the
waits of loops that keep trying something that is down."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.backoff import (
    RETRY_STEPS,
    Backoff,
    Outage,
    doubling,
    retry_delay,
    retry_span,
    with_retries,
)

MINUTE = 60.0


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [
        (1, 5.0, 6.25),  # after the first attempt: 5 s
        (2, 2 * MINUTE, 2.5 * MINUTE),  # then 2 min
        (3, 10 * MINUTE, 12.5 * MINUTE),  # then 10 min
        (4, 30 * MINUTE, 37.5 * MINUTE),  # then 30 min
        (9, 30 * MINUTE, 37.5 * MINUTE),  # beyond the schedule: its last step
    ],
)
def test_a_row_retries_after_5_s_2_min_10_min_then_30_min_jittered(
    attempts: int, low: float, high: float
) -> None:
    delays = {retry_delay(attempts) for _ in range(200)}
    assert all(low <= d <= high for d in delays), (min(delays), max(delays))
    assert len(delays) > 1, "jittered: rows that failed together do not return together"


def test_five_attempts_of_one_row_span_at_least_30_minutes() -> None:
    assert retry_span(5) >= 30 * MINUTE
    assert retry_span(5) == 5 + 2 * MINUTE + 10 * MINUTE + 30 * MINUTE


@given(
    first=st.floats(min_value=0.001, max_value=60.0),
    attempts=st.integers(min_value=1, max_value=50),
    rand=st.floats(min_value=0.0, max_value=0.999999),
)
def test_jitter_only_lengthens_a_wait_by_a_quarter_at_most(
    first: float, attempts: int, rand: float
) -> None:
    plain = retry_delay(attempts, first=first, jitter=0.0)
    jittered = retry_delay(attempts, first=first, rand=lambda: rand)
    assert plain <= jittered <= 1.25 * plain
    assert plain == first * RETRY_STEPS[min(attempts, len(RETRY_STEPS)) - 1]


@given(
    first=st.floats(min_value=0.001, max_value=60.0),
    attempts=st.integers(min_value=1, max_value=20),
)
def test_waits_never_shrink_from_one_attempt_to_the_next(first: float, attempts: int) -> None:
    assert retry_delay(attempts + 1, first=first, jitter=0.0) >= retry_delay(
        attempts, first=first, jitter=0.0
    )


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (5, 4.0), (6, 5.0), (40, 5.0)],
)
def test_doubling_from_the_first_wait_up_to_the_cap(failures: int, expected: float) -> None:
    assert doubling(failures, first=0.25, maximum=5.0) == expected


def test_a_loop_backs_off_while_failing_and_starts_over_after_a_success() -> None:
    backoff = Backoff(first=1.0, maximum=4.0)
    assert not backoff.failing and backoff.delay == 0.0
    assert [backoff.failed() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert backoff.failing
    backoff.succeeded()
    assert not backoff.failing and backoff.delay == 0.0
    assert backoff.failed() == 1.0


@given(rand=st.floats(min_value=0.0, max_value=0.999999), failures=st.integers(1, 30))
def test_a_jittered_loop_waits_between_half_and_all_of_its_step(rand: float, failures: int) -> None:
    backoff = Backoff(first=0.5, maximum=8.0, jitter=0.5, rand=lambda: rand)
    for _ in range(failures):
        wait = backoff.failed()
    step = doubling(failures, first=0.5, maximum=8.0)
    assert step / 2 <= wait <= step


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_server_down_is_probed_once_per_pause_and_the_pause_doubles_per_probe() -> None:
    clock = Clock()
    outage = Outage(first=1.0, maximum=4.0, clock=clock)
    assert not outage.down and outage.until_probe() == 0.0
    assert outage.failed("refused") == 1.0
    assert outage.down and not outage.probe_due()
    clock.now += 0.25  # sends under way when it went down find the same pause
    assert outage.failed("refused") == 0.75
    clock.now += 0.75
    assert outage.probe_due()
    assert [outage.failed("refused"), outage.failed("refused")] == [2.0, 2.0]
    clock.now += 2.0
    assert outage.failed("refused") == 4.0
    clock.now += 4.0
    assert outage.failed("refused") == 4.0  # capped
    clock.now += 1.5
    assert outage.down_for() == 8.5
    assert outage.recovered() == 8.5
    assert not outage.down and outage.pause == 0.0
    assert outage.recovered() is None


class Flaky(Exception):
    pass


async def test_a_call_is_retried_with_doubling_jittered_waits_then_its_error_raised() -> None:
    calls: list[int] = []
    waits: list[float] = []

    async def call() -> str:
        calls.append(1)
        raise Flaky

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with pytest.raises(Flaky):
        await with_retries(
            call, retry_on=Flaky, attempts=5, first=0.5, maximum=1.5, rand=lambda: 0.5, sleep=sleep
        )
    assert len(calls) == 5
    # 0.5 doubling to the cap of 1.5, each lengthened by up to `first` (here half of it).
    assert waits == [0.75, 1.25, 1.75, 1.75]


async def test_a_retried_call_returns_once_it_works_and_other_errors_pass_at_once() -> None:
    outcomes: list[BaseException | str] = [Flaky(), "ok"]
    waits: list[float] = []

    async def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    assert (
        await with_retries(call, retry_on=Flaky, attempts=3, first=1, maximum=8, sleep=sleep)
        == "ok"
    )
    assert len(waits) == 1 and 1 <= waits[0] < 2

    outcomes[:] = [KeyError("permanent"), "never reached"]
    with pytest.raises(KeyError):
        await with_retries(call, retry_on=Flaky, attempts=3, first=1, maximum=8, sleep=sleep)
    assert outcomes == ["never reached"] and len(waits) == 1
