"""Trace-driven poll simulator: the real scheduler in simulated time (no sleeping).

A seeded population of players with realistic habits plays live chess for weeks: time
zones and preferred hours of the day, busier weekends for some, sessions of several
games with short pauses, breaks of days to weeks, a few very active players, and
subscriber counts with a long tail. A game shows up in the archive only after an
archive delay. Every policy polls this world through the same request budget
(`worker.schedule.Slots`: requests go at spaced slots) and the same claim:

* ``fixed N`` — every player every N seconds, claimed by due time;
* ``tiered`` — the policy before issue 14 (``POLL_INTERVAL_SECONDS`` tiers: in a
  session base/5, a live game in the last day base, in the last week 2 * base, else
  4 * base), claimed by due time;
* ``scheduler`` — ``worker.schedule.plan`` (learned hour-of-week activity, sessions,
  subscribers) and its claim order ``worker.schedule.CLAIM_ORDER``.

At the start every player has just had its baseline poll: its profile is learned from
the archive games of the previous five weeks, as the worker's first poll does. The
first simulated day is warm-up; figures cover the following days: delay from a live
game's end to the poll that sees it (all games, and the games that open a session,
which are the ones that notify), and requests per player-day. One poll is one request
(the archive with an ETag; profile refreshes and month turns are left out).

    .venv/bin/python -m bench.poll_simulator --players 1000 --seeds 1 2 3 4
    .venv/bin/python -m bench.poll_simulator --players 10000 --fixed 300 --seeds 1
    .venv/bin/python -m bench.poll_simulator --players 10000 --seeds 2 3 --only tiered scheduler

The budget defaults to 1 request per second per 1,000 players (binding: the tiered
policy wants about twice that). A summary table of tiered against the scheduler, one
row per seed, closes the output.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from worker import schedule
from worker.schedule import (
    DAY,
    HOUR,
    Activity,
    Candidate,
    Policy,
    PollView,
    Slots,
    Turn,
    choose,
    plan,
    quantize,
    slot_spacing,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00Z, a Thursday
HISTORY_DAYS = 35
GAME_SECONDS = {"bullet": (110.0, 30.0), "blitz": (430.0, 120.0), "rapid": (1300.0, 300.0)}


# ------------------------------------------------------------------- the population


@dataclass
class SimPlayer:
    pid: int
    subscribers: int
    ends: list[float] = field(default_factory=list)  # live game ends, sorted
    starts: list[float] = field(default_factory=list)
    visible: list[float] = field(default_factory=list)  # when each shows in the archive
    opens: list[bool] = field(default_factory=list)  # the game opens a session


KINDS = (  # share, sessions per active day, mean games per session
    ("very active", 0.03, (3.0, 6.0), 8.0),
    ("regular", 0.22, (0.6, 1.5), 4.0),
    ("casual", 0.45, (0.15, 0.5), 3.5),
    ("rare", 0.30, (0.02, 0.1), 3.0),
)


def _subscribers(rng: random.Random, kind: str) -> int:
    roll = rng.random()
    if kind == "very active":
        roll = roll**0.3  # popular players are mostly the very active ones
    if roll < 0.6:
        return 1
    if roll < 0.85:
        return rng.randint(2, 5)
    if roll < 0.97:
        return rng.randint(6, 50)
    return rng.randint(51, 1000)


def make_player(pid: int, rng: random.Random, start: float, end: float, delay: float) -> SimPlayer:
    roll, acc = rng.random(), 0.0
    kind, per_day, games_mean = KINDS[-1][0], KINDS[-1][2], KINDS[-1][3]
    for name, share, rate_range, mean in KINDS:
        acc += share
        if roll < acc:
            kind, per_day, games_mean = name, rate_range, mean
            break
    player = SimPlayer(pid, _subscribers(rng, kind))
    tz = rng.choice([-8, -7, -6, -5, -5, -4, -3, 0, 1, 1, 1, 2, 2, 3, 5, 5.5, 8, 9])
    peaks = [rng.gauss(20.5, 2.0)]
    if rng.random() < 0.35:
        peaks.append(rng.choice([7.5, 12.5, 16.0]) + rng.gauss(0, 1))
    weekend_boost = rng.choice([1.0, 1.0, 1.8])
    time_class = rng.choices(list(GAME_SECONDS), weights=[2, 6, 2])[0]
    daily = rng.uniform(*per_day)
    day, on_break_until = math.floor(start / DAY) * DAY, start
    while day < end:
        if day >= on_break_until and rng.random() < 0.1 / 7:  # ~one break in 10 weeks
            on_break_until = day + rng.uniform(3, 21) * DAY
        local_weekday = int((day + tz * HOUR) // DAY + 3) % 7  # 0 = Monday
        boost = weekend_boost if local_weekday >= 5 else 1.0
        n = 0 if day < on_break_until else _poisson(rng, daily * boost)
        for _ in range(n):
            local = rng.choice(peaks) + rng.gauss(0, 1.0)
            t = day + (local - tz) * HOUR
            _session(player, rng, t, games_mean, time_class, delay)
        day += DAY
    order = sorted(range(len(player.ends)), key=player.ends.__getitem__)
    player.ends = [player.ends[i] for i in order]
    player.starts = [player.starts[i] for i in order]
    player.visible = [player.visible[i] for i in order]
    player.opens = [player.opens[i] for i in order]
    return player


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def _session(
    player: SimPlayer,
    rng: random.Random,
    t: float,
    games_mean: float,
    time_class: str,
    delay: float,
) -> None:
    games = 1 + int(rng.expovariate(1 / max(0.01, games_mean - 1)))
    mean, sd = GAME_SECONDS[time_class]
    last = player.ends[-1] if player.ends else -math.inf
    for i in range(games):
        t = max(t, last + 5)
        player.starts.append(t)
        t += max(30.0, rng.gauss(mean, sd))
        player.ends.append(t)
        player.visible.append(t + rng.expovariate(1 / delay) if delay > 0 else t)
        player.opens.append(i == 0 and t - last > 1800)
        last = t
        t += 10 + rng.expovariate(1 / 60)


def population(n: int, seed: int, days: float, delay: float) -> list[SimPlayer]:
    rng = random.Random(seed)
    start, end = T0 - HISTORY_DAYS * DAY, T0 + (days + 2) * DAY
    return [make_player(i, rng, start, end, delay) for i in range(n)]


# ------------------------------------------------------------------- policies

Planner = Callable[[PollView, float], Turn]


@dataclass(frozen=True)
class Strategy:
    name: str
    planner: Planner
    by_priority: bool  # claim order: worker.schedule.CLAIM_ORDER, else due time


def fixed(interval: float) -> Strategy:
    return Strategy(f"fixed {interval:g} s", lambda v, now: Turn(interval, 0.0), False)


def tiered(base: float, gap: float) -> Strategy:
    """The schedule before issue 14 (worker/detection.next_poll_delay of that time)."""

    def planner(view: PollView, now: float) -> Turn:
        last = view.last_live_end
        if last is not None and now - last < gap:
            return Turn(min(base, max(base / 5, 30.0)), 0.0)
        if last is None or now - last > 7 * DAY:
            return Turn(base * 4, 0.0)
        return Turn(base if now - last <= DAY else base * 2, 0.0)

    return Strategy(f"tiered (base {base:g} s)", planner, False)


def scheduler(policy: Policy) -> Strategy:
    return Strategy("scheduler", lambda v, now: plan(v, now=now, policy=policy), True)


# ------------------------------------------------------------------- the simulation


@dataclass
class Result:
    name: str
    delays: list[float]
    opening_delays: list[float]
    awaited: list[tuple[float, int]]
    requests: int
    player_days: float
    seconds: float

    def awaited_pct(self, q: float) -> float:
        """Percentile of notification delay per subscriber: each session opener
        counts once per subscriber waiting for it."""
        ordered = sorted(self.awaited)
        total = sum(w for _, w in ordered)
        acc = 0
        for delay, w in ordered:
            acc += w
            if acc >= q * total:
                return delay
        return math.nan

    def pct(self, values: list[float], q: float) -> float:
        if not values:
            return math.nan
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Claim:
    """Due players in claim order, one pick per request slot.

    For the scheduler this is `worker.schedule.CLAIM_ORDER` (overdue players oldest
    poll first, then the largest ``rate * age**2``), evaluated incrementally so that a
    pick among thousands costs little: due players are kept in one heap per rate (rates
    sit on a quarter-octave grid, so there are few), ordered by last poll, and the pick
    compares the heads. (Every simulated player is planned, so the order's "never
    polled / no rate" cases do not arise here.) For the other policies it is the due
    time.
    """

    def __init__(self, by_urgency: bool, max_wait: float) -> None:
        self.by_urgency = by_urgency
        self.max_wait = max_wait
        self.version: dict[int, int] = {}
        self.by_last: list[tuple[float, int, int]] = []  # every player: overdue check
        self.buckets: dict[float, list[tuple[float, float, int, int]]] = {}
        self.due: list[tuple[float, int, int]] = []  # by due time (other policies)

    def polled(self, i: int, last: float) -> None:
        self.version[i] = self.version.get(i, 0) + 1
        if self.by_urgency:
            heapq.heappush(self.by_last, (last, i, self.version[i]))

    def make_due(self, i: int, next_poll: float, last: float, rate: float) -> None:
        ver = self.version[i]
        if self.by_urgency:
            heapq.heappush(self.buckets.setdefault(rate, []), (last, next_poll, i, ver))
        else:
            heapq.heappush(self.due, (next_poll, i, ver))

    def pick(self, now: float) -> int | None:
        if not self.by_urgency:
            return self._pop_valid(self.due)
        heap = self.by_last
        while heap and heap[0][2] != self.version[heap[0][1]]:
            heapq.heappop(heap)
        if heap and now - heap[0][0] >= self.max_wait:
            return heapq.heappop(heap)[1]
        best: tuple[float, float, int] | None = None
        best_rate = 0.0
        for rate, bucket in self.buckets.items():
            while bucket and bucket[0][3] != self.version[bucket[0][2]]:
                heapq.heappop(bucket)
            if bucket:
                last, next_poll, i, _ = bucket[0]
                key = (-rate * (now - last) ** schedule.URGENCY_POWER, next_poll, i)
                if best is None or key < best:
                    best, best_rate = key, rate
        if best is None:
            return None
        return heapq.heappop(self.buckets[best_rate])[2]

    def _pop_valid(self, heap: list[tuple[float, int, int]]) -> int | None:
        while heap:
            _, i, ver = heapq.heappop(heap)
            if ver == self.version[i]:
                return i
        return None


def simulate(
    players: list[SimPlayer],
    strategy: Strategy,
    *,
    budget: float,
    days: float,
    policy: Policy,
    seed: int,
) -> Result:
    started = time.perf_counter()
    rng = random.Random(seed)
    n = len(players)
    measure_from, measure_to = T0 + DAY, T0 + DAY + days * DAY
    stop = measure_to + 6 * HOUR  # late polls of games that ended in the window
    seen = [0] * n
    last_live: list[float | None] = [None] * n
    activity: list[Activity] = []
    last_poll = [T0] * n
    rate = [0.0] * n
    scheduled: list[tuple[float, int, int]] = []  # (next_poll, pid, version)
    claim = Claim(strategy.by_priority, policy.max_wait)

    def view(i: int) -> PollView:
        return PollView(last_live[i], subscribers=players[i].subscribers, activity=activity[i])

    def schedule(i: int, last: float, turn: Turn) -> None:
        claim.polled(i, last)
        last_poll[i], rate[i] = last, turn.rate
        heapq.heappush(scheduled, (last + turn.delay, i, claim.version[i]))

    # The baseline poll: the archive so far, profile learned, next turns spread out.
    for i, p in enumerate(players):
        k = _visible_count(p, T0)
        seen[i] = k
        last_live[i] = p.ends[k - 1] if k else None
        activity.append(Activity().observe(zip(p.starts[:k], p.ends[:k], strict=True), now=T0))
        turn = strategy.planner(view(i), T0)
        schedule(i, T0 - rng.uniform(0, turn.delay), turn)

    delays: list[float] = []
    opening: list[float] = []
    awaited: list[tuple[float, int]] = []  # (delay, subscribers) of session openers
    requests = 0
    slots = Slots(next_slot_at=T0)
    now = T0
    while now < stop:
        slots, now = slots.take(now, rate=budget)
        while scheduled and scheduled[0][0] <= now:
            at, j, ver = heapq.heappop(scheduled)
            if ver == claim.version[j]:
                claim.make_due(j, at, last_poll[j], rate[j])
        picked = claim.pick(now)
        if picked is None:
            # Nothing due: the next request goes when the next player comes due.
            if not scheduled:
                break
            slots = Slots(max(slots.next_slot_at, scheduled[0][0]), slots.factor, slots.cut_at)
            continue
        i = picked
        if measure_from <= now < measure_to:
            requests += 1
        fresh = _see(players[i], seen, i, now, measure_from, measure_to, delays, opening, awaited)
        if fresh:
            last_live[i] = fresh[-1][1]
            if strategy.by_priority:
                activity[i] = activity[i].observe(fresh, now=now)
        schedule(i, now, strategy.planner(view(i), now))
    seconds = time.perf_counter() - started
    return Result(strategy.name, delays, opening, awaited, requests, n * days, seconds)


def _see(
    p: SimPlayer,
    seen: list[int],
    i: int,
    now: float,
    measure_from: float,
    measure_to: float,
    delays: list[float],
    opening: list[float],
    awaited: list[tuple[float, int]],
) -> list[tuple[float, float]]:
    """The games a poll at `now` sees for the first time; their delays are recorded."""
    k = seen[i]
    fresh: list[tuple[float, float]] = []
    while k < len(p.ends) and p.visible[k] <= now:
        if measure_from <= p.ends[k] < measure_to:
            delays.append(now - p.ends[k])
            if p.opens[k]:
                opening.append(now - p.ends[k])
                awaited.append((now - p.ends[k], p.subscribers))
        fresh.append((p.starts[k], p.ends[k]))
        k += 1
    seen[i] = k
    return fresh


def _visible_count(p: SimPlayer, at: float) -> int:
    k = 0
    while k < len(p.visible) and p.ends[k] <= at and p.visible[k] <= at:
        k += 1
    return k


def claim_order_matches(players: int = 300, seed: int = 7) -> bool:
    """`Claim` picks in the order of `worker.schedule.choose` (a self-check)."""
    rng = random.Random(seed)
    policy = Policy(300, 1800, 3600)
    now = T0
    cands = []
    for i in range(players):
        last = now - rng.uniform(0, 5000)
        # A planned delay never exceeds max_wait, so an overdue player is due.
        rate = quantize(rng.uniform(1e-6, 1e-2))
        cands.append(Candidate(i, last + rng.uniform(0, 3600), last, rate))
    expected = choose(cands, now=now, limit=players, policy=policy)
    claim = Claim(True, policy.max_wait)
    for c in cands:
        assert c.last_polled_at is not None
        claim.polled(c.player_id, c.last_polled_at)
        if c.next_poll_at <= now:
            claim.make_due(c.player_id, c.next_poll_at, c.last_polled_at, c.rate)
    got = []
    for _ in expected:
        picked = claim.pick(now)
        assert picked is not None
        got.append(picked)
        claim.polled(picked, now)
    return got == [c.player_id for c in expected]


# ------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, nargs="+", default=[1000])
    parser.add_argument(
        "--budget", type=float, default=None, help="requests per second (default: players/1000)"
    )
    parser.add_argument("--days", type=float, default=3.0, help="measured days after warm-up")
    parser.add_argument("--base", type=float, default=300.0, help="POLL_INTERVAL_SECONDS")
    parser.add_argument("--max-wait", type=float, default=3600.0, help="POLL_MAX_WAIT_SECONDS")
    parser.add_argument("--archive-delay", type=float, default=15.0, help="mean, seconds")
    parser.add_argument("--fixed", type=float, nargs="*", default=[60.0, 300.0, 1200.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="one population per seed")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["fixed", "tiered", "scheduler"],
        help="run only these policies (default: all)",
    )
    args = parser.parse_args()
    assert claim_order_matches(), "the simulator's claim differs from worker.schedule"
    policy = Policy(args.base, 1800.0, args.max_wait)
    summary: list[str] = []
    for n in args.players:
        for seed in args.seeds:
            ratio = _run(n, seed, args, policy)
            if ratio:
                summary.append(f"| {n} | {seed} | {ratio} |")
    if summary:
        print(
            "\n| players | seed | tiered p50 / p95 / p99 s | scheduler p50 / p95 / p99 s "
            "| ratio p50 / p95 |"
        )
        print("|---|---|---|---|---|")
        print("\n".join(summary))


def _run(n: int, seed: int, args: argparse.Namespace, policy: Policy) -> str:
    """One population: a table of every policy; the tiered/scheduler comparison."""
    budget = args.budget if args.budget is not None else n / 1000
    # As the worker sees it: the budget and how many players it serves.
    policy = replace(policy, requests_per_second=budget, tracked_players=n)
    players = population(n, seed, args.days, args.archive_delay)
    games = sum(len(p.ends) for p in players)
    usable = 1 / slot_spacing(budget)  # the spacing keeps a margin for late sends
    print(
        f"\n{n} players, seed {seed}, budget {budget:g} req/s (usable {usable:.2f}/s, "
        f"{usable * DAY / n:.1f} per player-day), "
        f"{args.days:g} measured days, archive delay mean {args.archive_delay:g} s, "
        f"{games} live games in the trace"
    )
    only = set(args.only or ["fixed", "tiered", "scheduler"])
    strategies = []
    if "fixed" in only:
        strategies += [fixed(i) for i in args.fixed] + [fixed(round(n / usable))]
    if "tiered" in only:
        strategies.append(tiered(args.base, 1800.0))
    if "scheduler" in only:
        strategies.append(scheduler(policy))
    print(
        "| policy | p50 s | p95 s | p99 s | session-opening p50 / p95 s "
        "| per subscriber p50 / p95 s | requests per player-day | sim s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    found: dict[str, tuple[float, float, float]] = {}
    for strategy in strategies:
        r = simulate(players, strategy, budget=budget, days=args.days, policy=policy, seed=2)
        found[r.name] = (r.pct(r.delays, 0.5), r.pct(r.delays, 0.95), r.pct(r.delays, 0.99))
        print(
            f"| {r.name} | {r.pct(r.delays, 0.5):.0f} | {r.pct(r.delays, 0.95):.0f} "
            f"| {r.pct(r.delays, 0.99):.0f} | {r.pct(r.opening_delays, 0.5):.0f} / "
            f"{r.pct(r.opening_delays, 0.95):.0f} | {r.awaited_pct(0.5):.0f} / "
            f"{r.awaited_pct(0.95):.0f} | {r.requests / r.player_days:.1f} "
            f"| {r.seconds:.1f} |",
            flush=True,
        )
    old, new = found.get(tiered(args.base, 1800.0).name), found.get("scheduler")
    if old is None or new is None:
        return ""
    return (
        f"{old[0]:.0f} / {old[1]:.0f} / {old[2]:.0f} | {new[0]:.0f} / {new[1]:.0f} / "
        f"{new[2]:.0f} | **{new[0] / old[0]:.2f} / {new[1] / old[1]:.3f}**"
    )


if __name__ == "__main__":
    main()
