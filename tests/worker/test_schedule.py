"""The scheduling rule (worker.schedule): table-driven cases and properties.

Properties (hypothesis): the request slots never put more than the budget in any 10 s
window, even with late sends and 429s; in a simulated run of the claim nobody waits
longer than the documented bound; more subscribers never mean a later poll.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from worker.schedule import (
    DAY,
    HOUR,
    JITTER,
    SESSION_PAUSE,
    WINDOW,
    Activity,
    Candidate,
    Policy,
    PollView,
    Slots,
    choose,
    habit_rate,
    in_session,
    plan,
    quantize,
    slot_spacing,
)

T0 = 1_767_225_600.0  # a Thursday, 00:00 UTC
BASE = 300.0
POLICY = Policy(base_seconds=BASE, gap_seconds=1800, max_wait_seconds=3600)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIMS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def evenings(weeks: int = 4, hour: int = 20) -> Activity:
    """Someone who played three blitz games at `hour` every day for `weeks` weeks."""
    games = [
        (T0 - d * DAY + hour * HOUR + k * 500 - 420, T0 - d * DAY + hour * HOUR + k * 500)
        for d in range(1, 7 * weeks + 1)
        for k in range(3)
    ]
    return Activity().observe(games, now=T0)


# ------------------------------------------------------------------ turns, by example


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (PollView(last_live_end=T0, closed=True), DAY),
        (PollView(last_live_end=None, closed=True, failures=3), DAY),
        (PollView(last_live_end=None, failures=1), 2 * BASE),
        (PollView(last_live_end=None, failures=2), 4 * BASE),
        (PollView(last_live_end=None, failures=10), 1800.0),  # backoff stops at max_wait / 2
        (PollView(last_live_end=None, failures=10_000), 1800.0),
    ],
)
def test_closed_and_failing_players(view: PollView, expected: float) -> None:
    assert plan(view, now=T0, policy=POLICY).delay == expected


def games_of(length: float) -> Activity:
    """Someone whose one live game so far (a day ago) took `length` seconds."""
    return Activity().observe([(T0 - DAY - length, T0 - DAY)], now=T0)


def test_a_session_is_polled_at_the_next_games_expected_end() -> None:
    # A 80-second game just ended: the next one most likely ends a pause + 80 s on.
    view = PollView(last_live_end=T0, activity=games_of(80))
    turn = plan(view, now=T0, policy=POLICY)
    assert turn.delay == pytest.approx(80 + SESSION_PAUSE)
    idle = plan(PollView(last_live_end=T0 - 3 * DAY), now=T0, policy=POLICY)
    assert idle.delay > 2 * turn.delay
    assert turn.rate > 100 * idle.rate
    # Seen late: the expected end is reckoned from the game's end, not from the poll.
    assert plan(view, now=T0 + 100, policy=POLICY).delay == pytest.approx(SESSION_PAUSE - 20)
    # Longer games: a session never waits more than half the base interval, and less
    # when a game lasts several base intervals.
    blitz = PollView(last_live_end=T0, activity=games_of(400))
    assert plan(blitz, now=T0, policy=POLICY).delay == BASE / 2
    rapid = PollView(last_live_end=T0, activity=games_of(1500))
    assert plan(rapid, now=T0, policy=POLICY).delay == pytest.approx(2 * BASE**2 / 1500)
    fast = Policy(base_seconds=8, gap_seconds=1800)
    assert plan(rapid, now=T0, policy=fast).delay == fast.min_delay == 1.0


def test_past_the_expected_end_a_session_is_checked_often_then_handed_back() -> None:
    view = PollView(last_live_end=T0, activity=games_of(180))
    first = plan(view, now=T0, policy=POLICY)
    checks = [plan(view, now=T0 + since, policy=POLICY) for since in (240, 300, 400, 600)]
    assert all(POLICY.min_delay <= c.delay <= BASE / 4 for c in checks)
    rates = [first.rate] + [c.rate for c in checks]
    assert rates == sorted(rates, reverse=True)
    # Long past it the session has most likely ended: the habit decides again, though
    # the player still counts as playing until the session gap has passed.
    quiet = plan(view, now=T0 + 1500, policy=POLICY)
    assert quiet.delay >= BASE
    assert quiet.rate < rates[-1]
    assert in_session(view, now=T0 + 1500, policy=POLICY)


def test_the_typical_game_length_follows_recent_games() -> None:
    activity = Activity().observe(
        [(T0 - 10_000 + k * 700, T0 - 10_000 + k * 700 + 600) for k in range(10)], now=T0
    )
    assert activity.last_length == pytest.approx(600)
    quick = activity.observe([(T0 - 100, T0 - 40)], now=T0)  # one resignation
    assert quick.last_length is not None
    assert 60 < quick.last_length < 600
    assert quick.last_length > 400  # one short game does not make the player a bullet player


def test_the_learned_hours_are_polled_more() -> None:
    view = PollView(last_live_end=T0 - DAY + 20 * HOUR, activity=evenings())
    evening = plan(view, now=T0 + 20 * HOUR, policy=POLICY)
    morning = plan(view, now=T0 + 8 * HOUR, policy=POLICY)
    assert evening.delay <= BASE < morning.delay
    assert evening.rate > 10 * morning.rate


def test_outside_a_session_the_base_interval_is_the_floor_less_for_popular_players() -> None:
    # Under a binding budget the tail is shortest when every likely session is polled
    # about every POLL_INTERVAL_SECONDS rather than the likeliest every few seconds.
    delays = [
        plan(
            PollView(last_live_end=T0 - DAY, subscribers=subs, activity=evenings()),
            now=T0 + 20 * HOUR,
            policy=POLICY,
        ).delay
        for subs in (0, 1, 5, 50, 1000)
    ]
    assert delays[0] == delays[1] == BASE
    assert delays == sorted(delays, reverse=True)
    assert POLICY.min_delay <= delays[-1] < BASE / 2


def test_a_players_own_hours_weigh_in() -> None:
    # Spread evenly over the week the habit is its own average: nothing added.
    even = Activity().observe(
        [(T0 - k * HOUR - 400, T0 - k * HOUR) for k in range(1, 24 * 28)], now=T0
    )
    assert habit_rate(even, T0) == pytest.approx(even.rate(T0), rel=0.05)
    # Concentrated in the evening: more than the rate at its hours, less elsewhere.
    evening = evenings()
    assert habit_rate(evening, T0 + 20 * HOUR) > 2 * evening.rate(T0 + 20 * HOUR)
    assert habit_rate(evening, T0 + 8 * HOUR) < evening.rate(T0 + 8 * HOUR)


def test_an_unknown_player_is_still_polled_within_max_wait() -> None:
    turn = plan(PollView(last_live_end=None), now=T0, policy=POLICY)
    assert BASE < turn.delay <= POLICY.longest_delay < POLICY.max_wait
    assert turn.rate > 0


def test_min_delay_scales_with_the_base_interval() -> None:
    assert Policy(300, 1800).min_delay == 15.0
    assert Policy(2, 1800).min_delay == 1.0
    assert Policy(0.5, 1800).min_delay == 0.5


def test_activity_counts_each_game_once_and_round_trips() -> None:
    activity = evenings(weeks=1)
    again = activity.observe([(T0 - DAY - 420, T0 - DAY)], now=T0)
    assert again == activity
    assert Activity.from_json(activity.to_json()).rate(T0 + 20 * HOUR) == pytest.approx(
        activity.rate(T0 + 20 * HOUR), rel=1e-3
    )
    assert Activity.from_json(None) == Activity()


def test_old_habits_fade() -> None:
    activity = evenings(weeks=1)
    assert activity.rate(T0 + 20 * HOUR + 8 * 7 * DAY) < activity.rate(T0 + 20 * HOUR) / 10


def test_quantize_keeps_order_on_a_grid() -> None:
    values = [quantize(x) for x in (1e-7, 3e-6, 1e-4, 2e-3, 0.5)]
    assert values == sorted(values)
    assert quantize(0.0) == 0.0
    assert quantize(1.0) == 1.0
    assert quantize(1.04) == 1.0  # within an eighth of an octave


# ------------------------------------------------------------------ the budget


def windows_ok(times: list[float], limit: float) -> bool:
    """No half-open WINDOW-long window holds more than `limit` of `times`."""
    times = sorted(times)
    j = 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + WINDOW:
            j += 1
        if j - i > limit:
            return False
    return True


@PROPS
@given(
    rate=st.floats(0.05, 200),
    gaps=st.lists(st.floats(0, 3), min_size=1, max_size=400),
    late=st.lists(st.floats(0, JITTER * 0.99), min_size=400, max_size=400),
    cuts=st.sets(st.integers(0, 399), max_size=5),
    retry_after=st.floats(0, 30),
)
@example(rate=0.15, gaps=[0.0] * 5, late=[0.0] * 400, cuts=set(), retry_after=0.0)
@example(rate=2.55, gaps=[0.0] * 100, late=[JITTER * 0.9] * 400, cuts=set(), retry_after=0.0)
@example(rate=10, gaps=[0.0] * 300, late=[JITTER * 0.9, 0.0] * 200, cuts=set(), retry_after=0.0)
def test_slots_never_exceed_the_budget_in_any_window(
    rate: float, gaps: list[float], late: list[float], cuts: set[int], retry_after: float
) -> None:
    slots, now, sent = Slots(next_slot_at=T0), T0, []
    for i, gap in enumerate(gaps):
        now += gap
        if i in cuts:
            slots = slots.rate_limited(now, retry_after=retry_after)
        slots, at = slots.take(now, rate=rate)
        assert at >= now
        sent.append(at + late[i])  # sent a little late, never early
    assert windows_ok(sent, max(1.0, math.floor(rate * WINDOW + 1e-9)))


def test_slots_use_the_budget_when_busy() -> None:
    slots, sent = Slots(next_slot_at=T0), []
    for _ in range(1000):
        slots, at = slots.take(T0, rate=10)
        sent.append(at)
    achieved = (len(sent) - 1) / (sent[-1] - sent[0])
    assert 9 < achieved <= 10  # 100 per 11 s: the spacing keeps JITTER in hand


def test_a_429_halves_the_rate_then_it_recovers() -> None:
    slots = Slots(next_slot_at=T0).rate_limited(T0, retry_after=5)
    assert slots.next_slot_at == T0 + 5
    assert slots.rate_factor(T0) == 0.5
    # Another 429 of the same burst cuts nothing more.
    assert slots.rate_limited(T0 + 0.5, retry_after=None).factor == 0.5
    assert slots.rate_limited(T0 + 10, retry_after=None).factor < 0.5
    assert slots.rate_factor(T0 + 1000) == 1.0
    assert slot_spacing(10) == pytest.approx((WINDOW + JITTER) / 100)


# ------------------------------------------------------------------ the claim, simulated


@st.composite
def populations(draw: st.DrawFn) -> tuple[list[PollView], float, Policy]:
    n = draw(st.integers(1, 30))
    views = []
    for _ in range(n):
        kind = draw(st.sampled_from(["idle", "session", "evenings", "failing", "never"]))
        subs = draw(st.integers(0, 2000))
        if kind == "session":
            view = PollView(T0 - draw(st.floats(0, 1700)), subscribers=subs)
        elif kind == "evenings":
            view = PollView(T0 - DAY, subscribers=subs, activity=evenings(weeks=1))
        elif kind == "failing":
            view = PollView(None, failures=draw(st.integers(1, 12)), subscribers=subs)
        elif kind == "never":
            view = PollView(None, subscribers=subs)
        else:
            view = PollView(T0 - draw(st.floats(DAY, 30 * DAY)), subscribers=subs)
        views.append(view)
    rate = draw(st.floats(0.01, 1))
    policy = Policy(
        base_seconds=draw(st.sampled_from([60.0, 300.0])),
        gap_seconds=1800,
        max_wait_seconds=draw(st.sampled_from([60.0, 600.0, 1800.0])),
    )
    return views, rate, policy


def run_claims(
    views: list[PollView], rate: float, policy: Policy, horizon: float
) -> list[list[float]]:
    """Poll times per player: one claim of one player per request slot, as the worker
    does with a claim limit of one, every poll one request, state frozen."""
    last: list[float | None] = [T0 - i for i in range(len(views))]
    turns = [plan(v, now=T0 - i, policy=policy) for i, v in enumerate(views)]
    due = [T0 - i + t.delay for i, t in enumerate(turns)]
    rates = [t.rate for t in turns]
    polls: list[list[float]] = [[] for _ in views]
    slots, now = Slots(next_slot_at=T0), T0
    while now < T0 + horizon:
        slots, now = slots.take(now, rate=rate)
        cands = [Candidate(i, due[i], last[i], rates[i]) for i in range(len(views))]
        picked = choose(cands, now=now, limit=1, policy=policy)
        if not picked:
            now = min(due)
            continue
        i = picked[0].player_id
        polls[i].append(now)
        turn = plan(views[i], now=now, policy=policy)
        last[i], due[i], rates[i] = now, now + turn.delay, turn.rate
    return polls


@SIMS
@given(populations())
def test_nobody_waits_longer_than_the_bound(case: tuple[list[PollView], float, Policy]) -> None:
    views, rate, policy = case
    bound = policy.max_wait + len(views) * slot_spacing(rate)
    horizon = 2 * bound
    polls = run_claims(views, rate, policy, horizon)
    for i, times in enumerate(polls):
        previous = T0 - i
        for t in [*times, T0 + horizon]:
            assert t - previous <= bound + 1e-6, (i, views[i])
            previous = t


@SIMS
@given(populations(), st.data())
def test_more_subscribers_never_mean_a_later_poll(
    case: tuple[list[PollView], float, Policy], data: st.DataObject
) -> None:
    views, rate, policy = case
    i = data.draw(st.integers(0, len(views) - 1))
    more = data.draw(st.integers(1, 5000))
    view = views[i]
    richer = PollView(
        view.last_live_end,
        view.closed,
        view.failures,
        view.subscribers + more,
        view.activity,
    )
    for now in (T0, T0 + 20 * HOUR):
        a, b = plan(view, now=now, policy=policy), plan(richer, now=now, policy=policy)
        assert b.delay <= a.delay
        assert b.rate >= a.rate
    horizon = policy.max_wait + len(views) * slot_spacing(rate)
    before = run_claims(views, rate, policy, horizon)[i]
    after = run_claims([*views[:i], richer, *views[i + 1 :]], rate, policy, horizon)[i]
    assert before and after
    assert after[0] <= before[0]


def test_players_in_a_session_are_claimed_first() -> None:
    policy = POLICY
    idle = [PollView(T0 - 3 * DAY, subscribers=50) for _ in range(20)]
    live = [PollView(T0 - 60, subscribers=1) for _ in range(3)]
    polls = run_claims(idle + live, 0.02, policy, HOUR)
    live_polls = [len(p) for p in polls[20:]]
    idle_polls = [len(p) for p in polls[:20]]
    assert min(live_polls) > 3 * max(idle_polls)


def test_rows_never_planned_go_first() -> None:
    # Players tracked before the schedule existed (or whose backoff ran out) carry no
    # rate; they are served like overdue ones instead of after every planned player.
    planned = Candidate(1, T0 - 5, T0 - 60, rate=1.0)
    unplanned = Candidate(2, T0 - 5, T0 - 30, rate=0.0)
    assert choose([planned, unplanned], now=T0, limit=2, policy=POLICY) == [unplanned, planned]


@PROPS
@given(
    length=st.floats(0, 4 * HOUR),
    since=st.floats(0, 1),
    subs=st.integers(0, 5000),
    base=st.sampled_from([2.0, 8.0, 60.0, 300.0, 900.0]),
)
def test_a_session_never_waits_longer_than_half_the_base_interval(
    length: float, since: float, subs: int, base: float
) -> None:
    # Until its next game is overdue a session (of a player whose habit is weaker than
    # the session, as here: one game so far) is planned within half the base interval.
    policy = Policy(base_seconds=base, gap_seconds=1800)
    activity = games_of(length)
    expected = max(60.0, activity.last_length or 0.0) + SESSION_PAUSE
    elapsed = since * min(expected, policy.gap_seconds - 1)
    view = PollView(last_live_end=T0, subscribers=subs, activity=activity)
    turn = plan(view, now=T0 + elapsed, policy=policy)
    assert turn.delay <= max(policy.min_delay, base / 2)
    assert turn.delay >= policy.min_delay


def test_a_budget_to_spare_lowers_the_floor() -> None:
    view = PollView(last_live_end=T0 - DAY, activity=evenings())
    at = T0 + 20 * HOUR
    # 1,000 players at 1/s: sweeping them all takes 1,100 s > base: the base is the floor.
    tight = Policy(BASE, 1800, requests_per_second=1, tracked_players=1000)
    assert plan(view, now=at, policy=tight).delay == BASE
    # At 10/s the budget sweeps them in 110 s: likely sessions get that much more.
    ample = Policy(BASE, 1800, requests_per_second=10, tracked_players=1000)
    assert ample.sweep_seconds == pytest.approx(110)
    assert plan(view, now=at, policy=ample).delay == pytest.approx(110)
    # Unknown (0 players): the base interval.
    assert plan(view, now=at, policy=POLICY).delay == BASE
    # Sessions too: the wait before the expected end and the checks after it shrink
    # by the same share (110 / 300) when the budget can sweep everyone that fast.
    blitz = PollView(last_live_end=T0, activity=games_of(400))
    assert plan(blitz, now=T0, policy=tight).delay == BASE / 2
    assert plan(blitz, now=T0, policy=ample).delay == pytest.approx(55)
    late = T0 + 400 + SESSION_PAUSE + 10
    check = plan(blitz, now=late, policy=tight).delay
    assert plan(blitz, now=late, policy=ample).delay == pytest.approx(check * 110 / 300)
