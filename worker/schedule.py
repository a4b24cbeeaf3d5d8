"""When to poll whom: the one scheduling rule, pure (no I/O, no clock reads).

A request budget (``CHESSCOM_REQUESTS_PER_SECOND``, shared by every worker) is spent
where a new game is most likely and most awaited:

* :class:`Activity` learns when a player plays: a decayed hour-of-week profile of the
  end times of their live games (a game seen ``HALF_LIFE`` ago counts half), read as
  an hour-of-day habit (the seven days pooled, neighbouring hours counting half), and
  the typical length of their live games.
* A **running session** (a live game ended less than the session gap ago): the next
  game most likely follows within a minute or two and lasts about as long, so
  :func:`next_game` plans the next poll at its expected end (``SESSION_PAUSE`` after
  one typical game length, never later than ``base``), then checks again every
  ``CHECK_FRACTION`` of the spread of that end while the chance fades; once the
  session has more likely ended than not the habit takes over.
* Outside a session :func:`plan` polls after
  ``base * (REFERENCE_RATE / (w λ)) ** (1 / URGENCY_POWER)``, within
  ``[idle_floor, max_wait / 2]``, where ``λ`` is the habit's rate at this hour (and the
  next) and :func:`weight` ``w`` grows with the subscribers. The floor (``base``, less
  for popular players) keeps the players whose hours these are from taking the
  budget in polls a few seconds apart: under a binding budget the delay that counts
  is the tail, and it is shortest when every likely session is polled about every
  ``base`` rather than the likeliest ones every few seconds (bench/RESULTS.md §3).
  With a budget to spare, ``base`` in these rules is :attr:`Policy.pace`, the time
  the budget takes to poll every tracked player once, if that is shorter.
* Every turn carries ``rate = w λ`` (in a session, the chance of the next game per
  second around its expected end) for the claim. :data:`CLAIM_ORDER` orders due players
  (the claim's SQL and :func:`choose` are both built from it): first every player not polled
  for ``max_wait`` (oldest poll first: nobody starves), then the largest
  urgency ``rate * age ** URGENCY_POWER`` (power 2, the square-root rule: under
  any budget the intervals shrink as ``(w λ) ** -1/2``), so players in a session come
  first, then those whose hours these are, the more awaited first.
* :class:`Slots` spaces requests so no 10 s window ever holds more than the budget,
  and halves the rate after a 429, recovering linearly.

Bound: a player that is not closed is polled at most ``max_wait + N * R * spacing``
seconds after its previous poll (``spacing`` about ``1 / rate``, see
:func:`slot_spacing`), where ``N`` is the number of tracked players and ``R`` the
requests one poll takes (1; up to 3 when the profile or the previous month is fetched
too): once overdue it goes before everyone who is not, and only players polled longer
ago go before it, each at most once. Closed accounts wait a day; failing ones back off
up to ``max_wait``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.backoff import doubling
from worker.ordering import (
    Age,
    AnyOf,
    Column,
    Compare,
    Env,
    IsNull,
    Key,
    Not,
    Number,
    Order,
    Param,
    Power,
    Times,
    When,
)

HOUR = 3600.0
DAY = 86_400.0
WEEK = 7 * DAY
SLOTS_PER_WEEK = 168
HALF_LIFE = 14 * DAY  # a game this old counts half in the profile
# The sum of decayed weights of a steady habit is its rate times this span.
EFFECTIVE_SPAN = HALF_LIFE / math.log(2)
DAY_KERNEL = (0.25, 0.5, 0.25)  # an hour of the day, smoothed with its neighbours
LOOKAHEAD_SLOTS = 2  # the rate of this hour and the next
PRIOR_GAMES = 1.0  # pseudo-count spread over the week: someone never seen may still play
URGENCY_POWER = 2.0  # see the module doc
REFERENCE_RATE = 1.0 / (7 * DAY)  # one game a week at this hour, no subscriber → base interval
DEFAULT_GAME_SECONDS = 420.0  # a live game whose length is unknown
LENGTH_WEIGHT = 0.3  # the newest game's share in the typical game length
SESSION_PAUSE = 60.0  # a game's end is expected this long after the previous one's + a length
SESSION_SPREAD = 0.3  # how far that end strays: this share of a length, + SESSION_PAUSE
SESSION_GOES_ON = 0.75  # chance that a live game is followed by another
CHECK_FRACTION = 0.6  # past the expected end, check again every this share of the spread
SESSION_CAP = 0.5  # a session waits at most this share of the base interval
MIN_DELAY_FRACTION = 1 / 20  # fastest poll: base / 20 (15 s at the default 300 s)
MIN_DELAY_FLOOR = 1.0

# Request budget
WINDOW = 10.0  # the budget holds over any window this long
JITTER = 1.0  # lateness of a send (wake-up, event loop, network) the spacing absorbs, s
MIN_RATE_FACTOR = 1 / 16  # a run of 429s never takes the rate below 1/16 of the budget
RECOVERY_SECONDS = 300.0  # a cut rate climbs back to the full budget over this long


# --------------------------------------------------------------------------- activity


def slot_of(moment: float) -> int:
    """Hour-of-week slot (0..167) of a Unix time, in UTC."""
    return int(moment // HOUR) % SLOTS_PER_WEEK


@dataclass(frozen=True, slots=True)
class Activity:
    """When a player plays: decayed counts of live game ends per hour-of-week slot
    (sparse), and the newest live game counted."""

    weights: Mapping[int, float] = field(default_factory=dict)
    as_of: float | None = None  # the weights are decayed to this time
    last_end: float | None = None  # newest game end counted: nothing is counted twice
    last_length: float | None = None  # typical length of their recent live games (s)

    def decayed(self, to: float) -> dict[int, float]:
        factor = self._factor(to)
        return {h: w * factor for h, w in self.weights.items()}

    def _factor(self, to: float) -> float:
        if self.as_of is None or to <= self.as_of:
            return 1.0
        return float(0.5 ** ((to - self.as_of) / HALF_LIFE))

    def observe(self, games: Iterable[tuple[float, float]], *, now: float) -> Activity:
        """Count the live games (``(start, end)``) not counted yet: newer than
        ``last_end``. Counting games rather than session starts weighs long sessions
        more, which measured better (bench/poll_simulator)."""
        fresh = sorted(
            (g for g in games if self.last_end is None or g[1] > self.last_end),
            key=lambda g: g[1],
        )
        if not fresh:
            return self
        weights = self.decayed(now)
        for _, end in fresh:
            h = slot_of(end)
            weights[h] = weights.get(h, 0.0) + 0.5 ** (max(0.0, now - end) / HALF_LIFE)
        # Slots that decayed to nothing are dropped so the stored profile stays small.
        weights = {h: w for h, w in weights.items() if w >= 1e-3}
        length = self.last_length
        for start, end in fresh:
            game = max(0.0, end - start)
            length = game if length is None else length + LENGTH_WEIGHT * (game - length)
        return Activity(weights, now, fresh[-1][1], length)

    def rate(self, at: float) -> float:
        """Expected live game ends per second around ``at`` (this slot or the next).

        The hour of the day, pooled over the seven days of the week and smoothed with
        the neighbouring hours: a weekly slot holds too few games to tell its hour from
        chance (bench/poll_simulator: p95 0.43-0.44 of tiered's against 0.44-0.47 with
        the weekly slot weighing 60 %)."""
        w = self.weights
        h = slot_of(at)
        reach = len(DAY_KERNEL) // 2

        def smoothed(s: int) -> float:
            return (
                sum(
                    k * w.get((s + j - reach + 24 * d) % SLOTS_PER_WEEK, 0.0)
                    for d in range(7)
                    for j, k in enumerate(DAY_KERNEL)
                )
                / 7
            )

        count = max(smoothed((h + k) % SLOTS_PER_WEEK) for k in range(LOOKAHEAD_SLOTS))
        count *= self._factor(at)
        count += PRIOR_GAMES / SLOTS_PER_WEEK
        # One slot of the week has been observed EFFECTIVE_SPAN / WEEK times.
        return count / (EFFECTIVE_SPAN / WEEK * HOUR)

    def mean_rate(self, at: float) -> float:
        """Expected live game ends per second averaged over the week (same scale as
        :meth:`rate`)."""
        count = sum(self.weights.values()) / SLOTS_PER_WEEK * self._factor(at)
        count += PRIOR_GAMES / SLOTS_PER_WEEK
        return count / (EFFECTIVE_SPAN / WEEK * HOUR)

    def to_json(self) -> dict[str, Any]:
        return {
            "w": {str(h): round(w, 4) for h, w in sorted(self.weights.items())},
            "at": self.as_of,
            "last": self.last_end,
            "len": self.last_length,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Activity:
        data = data or {}
        raw = data.get("w") or {}
        weights = {int(h) % SLOTS_PER_WEEK: float(w) for h, w in raw.items()}
        return cls(
            weights, _float(data.get("at")), _float(data.get("last")), _float(data.get("len"))
        )


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def next_game(
    since: float, game_seconds: float | None, check_share: float = 1.0
) -> tuple[float, float]:
    """A running session, ``since`` seconds after a live game ended: ``(wait, rate)``,
    the seconds until the next poll worth making and the expected new game ends per
    second around then.

    The next game most likely starts within a minute or two and lasts about as long as
    the player's games do, so its end is expected ``SESSION_PAUSE + length`` after the
    last one's: a poll before that is wasted. Past it the game may still come (a longer
    game, a longer pause): check every ``CHECK_FRACTION`` of the spread of that end,
    with a chance that fades as the wait grows."""
    length = max(60.0, game_seconds or DEFAULT_GAME_SECONDS)
    expected = length + SESSION_PAUSE
    spread = SESSION_SPREAD * length + SESSION_PAUSE
    rate = SESSION_GOES_ON / spread
    late = since - expected
    if late < 0:
        return -late, rate
    return CHECK_FRACTION * check_share * spread, rate * math.exp(-late / spread)


# --------------------------------------------------------------------------- turns


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of the schedule, from settings."""

    base_seconds: float  # POLL_INTERVAL_SECONDS
    gap_seconds: float  # LIVE_SESSION_GAP_SECONDS
    max_wait_seconds: float = 3600.0  # POLL_MAX_WAIT_SECONDS: the longest planned delay
    requests_per_second: float = 10.0  # CHESSCOM_REQUESTS_PER_SECOND
    tracked_players: int = 0  # players the budget serves (0: unknown)

    @property
    def sweep_seconds(self) -> float:
        """How long the full budget takes to poll every tracked player once."""
        return self.tracked_players * slot_spacing(self.requests_per_second)

    @property
    def min_delay(self) -> float:
        return min(self.base_seconds, max(MIN_DELAY_FLOOR, self.base_seconds * MIN_DELAY_FRACTION))

    @property
    def max_wait(self) -> float:
        """A player not polled for this long is overdue and goes first."""
        return max(self.max_wait_seconds, self.base_seconds)

    def idle_floor(self, w: float) -> float:
        """The shortest delay outside a session: ``base``, or the time the budget takes
        to sweep every player if that is shorter (a budget to spare goes to the likely
        sessions), shorter for players with more than one subscriber (``* sqrt(2 / w)``),
        never below ``min_delay``."""
        return max(self.min_delay, self.pace * min(1.0, math.sqrt(2.0 / w)))

    @property
    def pace(self) -> float:
        """The base interval, or the time the budget takes to sweep every tracked
        player if that is shorter: what the budget affords."""
        if self.tracked_players > 0:
            return min(self.base_seconds, self.sweep_seconds)
        return self.base_seconds

    @property
    def longest_delay(self) -> float:
        """The longest planned delay: half of ``max_wait``, so a player that comes due
        competes by urgency for a while before it is overdue and overrides everyone."""
        return self.max_wait / 2


@dataclass(frozen=True, slots=True)
class PollView:
    """What the schedule knows about one player."""

    last_live_end: float | None  # Unix seconds of the newest live game seen
    closed: bool = False  # closed, gone or renamed away
    failures: int = 0  # consecutive failed polls
    subscribers: int = 0  # active, confirmed
    activity: Activity = field(default_factory=Activity)


@dataclass(frozen=True, slots=True)
class Turn:
    delay: float  # seconds until the player is due again
    rate: float  # awaited games per second, w·λ on a quarter-octave grid (claim order)


def quantize(rate: float) -> float:
    """``rate`` rounded to a quarter-octave grid (2**(k/4)): a few dozen distinct
    values, so equal rates compare equal in SQL and in the simulator alike."""
    if rate <= 0:
        return 0.0
    return float(2.0 ** (round(math.log2(rate) * 4) / 4))


def habit_rate(activity: Activity, at: float) -> float:
    """``λ`` outside a session: the rate at this hour, times the square root of how far
    it stands above the player's own weekly average.

    The second factor weighs a player's own usual hours: the rate alone sends the
    budget to the busiest players' every hour, and the sessions it misses are the
    casual players' (bench/poll_simulator, 1,000 players at 1/s, four seeds: p95
    0.40-0.41 of tiered's with it, 0.43-0.45 without)."""
    rate = activity.rate(at)
    return rate * math.sqrt(rate / activity.mean_rate(at))


def in_session(view: PollView, *, now: float, policy: Policy) -> bool:
    """True while the newest live game ended less than the session gap ago."""
    return view.last_live_end is not None and now - view.last_live_end < policy.gap_seconds


def weight(subscribers: int) -> float:
    """How much a player's news is awaited: grows with the subscribers, never falls.

    Logarithmic: each doubling of the audience counts the same. Linear weights let a
    few popular players take the budget (bench/poll_simulator: p95 of all games 698 s
    against 424 s with this weight at 1,000 players and 1 request/s)."""
    return 1.0 + math.log2(1 + max(0, subscribers))


def session_cap(activity: Activity, policy: Policy) -> float:
    """The longest wait in a session: half the base interval, and less when a game
    lasts more than four base intervals (``2 * base**2 / length``).

    An operator who sets the base interval far below a game's length asks for polls
    far faster than games end: then a session is polled as often, relative to its
    games, so a short game or an early end is still noticed before the idle
    players' news (tests/worker/test_budget_processes.py)."""
    length = max(60.0, activity.last_length or DEFAULT_GAME_SECONDS)
    base = policy.pace
    return base * min(SESSION_CAP, 2 * base / length)


def plan(view: PollView, *, now: float, policy: Policy) -> Turn:
    """The next turn of one player (see the module doc).

    Closed accounts wait a day; after failed polls the delay doubles per failure up
    to ``max_wait``. More subscribers never lengthen the delay nor lower the rate:
    whether the session or the habit decides does not depend on them.
    """
    if view.closed:
        return Turn(DAY, 0.0)
    if view.failures > 0:
        # base * 2**failures: the doubling of app.backoff, one step ahead.
        delay = doubling(view.failures + 1, first=policy.base_seconds, maximum=policy.longest_delay)
        return Turn(delay, 0.0)
    w = weight(view.subscribers)
    if view.last_live_end is not None and in_session(view, now=now, policy=policy):
        share = policy.pace / policy.base_seconds
        wait, rate = next_game(now - view.last_live_end, view.activity.last_length, share)
        wait = max(min(wait, session_cap(view.activity, policy)), policy.min_delay)
        habit = view.activity.rate(now + wait)
        if rate > habit:  # the session still more likely than a new one
            return Turn(wait, quantize(w * (rate + habit)))
    value = w * habit_rate(view.activity, now)
    delay = policy.base_seconds * (REFERENCE_RATE / value) ** (1 / URGENCY_POWER)
    delay = min(max(delay, policy.idle_floor(w)), policy.longest_delay)
    return Turn(delay, quantize(value))


def next_poll_delay(view: PollView, *, now: float, policy: Policy) -> float:
    """Seconds until a player's next poll (:func:`plan`'s delay)."""
    return plan(view, now=now, policy=policy).delay


# --------------------------------------------------------------------------- the claim


@dataclass(frozen=True, slots=True)
class Candidate:
    """A player as the claim sees it."""

    player_id: int
    next_poll_at: float
    last_polled_at: float | None
    rate: float


# The claim order, written once (worker.ordering renders it as the claim's SQL in
# worker.scheduler and evaluates it here): due players not polled for ``max_wait``
# first, the oldest poll first (never polled, and never planned: no rate, i.e. rows
# from before the schedule, failing or closed players whose backoff ran out, count as
# overdue); then the largest urgency ``rate * age ** URGENCY_POWER``; then by due time.
LAST_POLL = Column("last_polled_at")
RATE = Column("poll_rate", attr="rate")
OVERDUE = AnyOf(
    (
        IsNull(LAST_POLL),
        Compare(RATE, "<=", Number(0.0)),
        Compare(Age(LAST_POLL), ">=", Param("max_wait")),
    )
)
URGENCY = Times(RATE, Power(Age(LAST_POLL), Number(URGENCY_POWER)))
CLAIM_ORDER = Order(
    (
        Key(OVERDUE, descending=True),
        Key(When(OVERDUE, LAST_POLL), nulls_first=True),
        Key(When(Not(OVERDUE), URGENCY), descending=True),
        Key(Column("next_poll_at")),
        Key(Column("player_id")),
    )
)


def claim_params(policy: Policy) -> dict[str, float]:
    """The parameters of :data:`CLAIM_ORDER` (its SQL's bind values)."""
    return {"max_wait": policy.max_wait}


def claim_key(c: Candidate, *, now: float, policy: Policy) -> tuple[tuple[int, float], ...]:
    """Sort key of the claim among due players (:data:`CLAIM_ORDER`)."""
    return CLAIM_ORDER.sort_key(c, Env(now, claim_params(policy)))


def choose(
    candidates: Iterable[Candidate], *, now: float, limit: int, policy: Policy
) -> list[Candidate]:
    """The players a claim of ``limit`` takes at ``now``: due ones in claim order."""
    due = [c for c in candidates if c.next_poll_at <= now]
    due.sort(key=lambda c: claim_key(c, now=now, policy=policy))
    return due[: max(0, limit)]


# --------------------------------------------------------------------------- budget


def slot_spacing(rate: float) -> float:
    """Seconds between two requests at ``rate`` per second, chosen so that no
    ``WINDOW``-long window ever holds more than ``rate * WINDOW`` requests, even when
    sends go up to ``JITTER`` late: ``k = floor(rate * WINDOW)`` slots per
    ``WINDOW + JITTER``. Below one request per window, plain ``1 / rate`` (widened)."""
    per_window = math.floor(rate * WINDOW + 1e-9)
    if per_window >= 1:
        return (WINDOW + JITTER) / per_window
    return (1 + JITTER / WINDOW) / rate


@dataclass(frozen=True, slots=True)
class Slots:
    """The shared request budget's state (one row in PostgreSQL, see worker.budget)."""

    next_slot_at: float = 0.0  # the earliest time the next request may go
    factor: float = 1.0  # rate factor right after the last cut (1: full budget)
    cut_at: float = 0.0  # when the rate was last cut

    def rate_factor(self, now: float) -> float:
        return min(1.0, self.factor + max(0.0, now - self.cut_at) / RECOVERY_SECONDS)

    def take(self, now: float, *, rate: float) -> tuple[Slots, float]:
        """Reserve the next request slot: the new state and the time to send at."""
        at = max(now, self.next_slot_at)
        spacing = slot_spacing(rate * self.rate_factor(at))
        return Slots(at + spacing, self.factor, self.cut_at), at

    def rate_limited(self, now: float, *, retry_after: float | None) -> Slots:
        """A 429: halve the rate and hold every request back for ``retry_after``."""
        if self.factor < 1.0 and now < self.cut_at + 1.0:  # one burst of 429s cuts once
            factor = self.factor
        else:
            factor = max(MIN_RATE_FACTOR, self.rate_factor(now) / 2)
        pause = max(0.0, retry_after or 0.0)
        return Slots(max(self.next_slot_at, now + pause), factor, now)
