"""When to poll whom: the one scheduling rule, pure (no I/O, no clock reads).

A request budget (``CHESSCOM_REQUESTS_PER_SECOND``, shared by every worker) is spent
where a new game is most likely and most awaited:

* :class:`Activity` learns when a player plays: a decayed hour-of-week profile of the
  end times of their live games (a game seen ``HALF_LIFE`` ago counts half).
* :func:`game_rate` is the expected rate ``λ`` of new live games: the profile's rate
  at this hour (and the next), plus, right after a live game, the rate at which the
  session goes on (fading when it goes quiet). :func:`weight` ``w`` grows with the
  subscribers.
* :func:`plan` gives a player its :class:`Turn`: it is due again after
  ``base * (REFERENCE_RATE / (w λ)) ** (1 / URGENCY_POWER)``, within
  ``[min_delay, max_wait]`` (what it gets when the budget is ample), and carries
  ``rate = w λ`` for the claim.
* :func:`claim_key` orders due players for the claim (the SQL in
  ``worker.scheduler`` is the same order): first every player not polled for
  ``max_wait`` (oldest poll first: nobody starves), then the largest
  :func:`urgency` ``rate * age ** URGENCY_POWER``. Serving the most urgent first polls
  each player when its urgency reaches a common level, so under any budget the
  intervals shrink as ``(w λ) ** (-1 / URGENCY_POWER)``: players in a session first,
  then those whose hours these are, the more awaited first. (Power 2 is the
  square-root rule that minimises the mean delay; 2.5 measured a shorter tail at
  almost the same median, see bench/RESULTS.md.)
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

HOUR = 3600.0
DAY = 86_400.0
WEEK = 7 * DAY
SLOTS_PER_WEEK = 168
HALF_LIFE = 14 * DAY  # a game this old counts half in the profile
# The sum of decayed weights of a steady habit is its rate times this span.
EFFECTIVE_SPAN = HALF_LIFE / math.log(2)
LOOKAHEAD_SLOTS = 2  # the rate of this hour and the next
PRIOR_GAMES = 1.0  # pseudo-count spread over the week: someone never seen may still play
URGENCY_POWER = 2.5  # see the module doc
REFERENCE_RATE = 1.0 / (7 * DAY)  # one game a week at this hour, no subscriber → base interval
DEFAULT_GAME_SECONDS = 420.0  # a live game whose length is unknown
SESSION_FADE_SECONDS = 900.0  # after this long without a game a session has likely ended
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
    last_length: float | None = None  # how long that game took (seconds)

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
        start, end = fresh[-1]
        return Activity(weights, now, end, max(0.0, end - start))

    def rate(self, at: float) -> float:
        """Expected live game ends per second around ``at`` (this slot or the next)."""
        w = self.weights
        h = slot_of(at)

        def smoothed(s: int) -> float:
            week = (
                0.5 * w.get(s, 0.0)
                + 0.25 * w.get((s - 1) % SLOTS_PER_WEEK, 0.0)
                + 0.25 * w.get((s + 1) % SLOTS_PER_WEEK, 0.0)
            )
            day = sum(w.get((s + 24 * d) % SLOTS_PER_WEEK, 0.0) for d in range(7)) / 7
            return 0.6 * week + 0.4 * day

        count = max(smoothed((h + k) % SLOTS_PER_WEEK) for k in range(LOOKAHEAD_SLOTS))
        count *= self._factor(at)
        count += PRIOR_GAMES / SLOTS_PER_WEEK
        # One slot of the week has been observed EFFECTIVE_SPAN / WEEK times.
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


def session_rate(since: float, game_seconds: float | None) -> float:
    """Expected new game ends per second ``since`` seconds after a live game ended:
    about one more game per three game lengths, fading as the session goes quiet."""
    length = max(60.0, game_seconds or DEFAULT_GAME_SECONDS)
    return math.exp(-max(0.0, since) / SESSION_FADE_SECONDS) / (3 * length)


# --------------------------------------------------------------------------- turns


@dataclass(frozen=True, slots=True)
class Policy:
    """The knobs of the schedule, from settings."""

    base_seconds: float  # POLL_INTERVAL_SECONDS
    gap_seconds: float  # LIVE_SESSION_GAP_SECONDS
    max_wait_seconds: float = 3600.0  # POLL_MAX_WAIT_SECONDS: the longest planned delay
    requests_per_second: float = 10.0  # CHESSCOM_REQUESTS_PER_SECOND

    @property
    def min_delay(self) -> float:
        return min(self.base_seconds, max(MIN_DELAY_FLOOR, self.base_seconds * MIN_DELAY_FRACTION))

    @property
    def max_wait(self) -> float:
        """A player not polled for this long is overdue and goes first."""
        return max(self.max_wait_seconds, self.base_seconds)

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


def in_session(view: PollView, *, now: float, policy: Policy) -> bool:
    """True while the newest live game ended less than the session gap ago."""
    return view.last_live_end is not None and now - view.last_live_end < policy.gap_seconds


def game_rate(view: PollView, *, now: float, policy: Policy) -> float:
    """Expected live game ends per second: the learned habit plus a running session."""
    rate = view.activity.rate(now)
    if view.last_live_end is not None and in_session(view, now=now, policy=policy):
        rate += session_rate(now - view.last_live_end, view.activity.last_length)
    return rate


def weight(subscribers: int) -> float:
    """How much a player's news is awaited: grows with the subscribers, never falls.

    Logarithmic: each doubling of the audience counts the same. Linear weights let a
    few popular players take the budget (bench/poll_simulator: p95 of all games 698 s
    against 424 s with this weight at 1,000 players and 1 request/s)."""
    return 1.0 + math.log2(1 + max(0, subscribers))


def plan(view: PollView, *, now: float, policy: Policy) -> Turn:
    """The next turn of one player (see the module doc).

    Closed accounts wait a day; after failed polls the delay doubles per failure up
    to ``max_wait``. More subscribers never lengthen the delay nor lower the rate.
    """
    if view.closed:
        return Turn(DAY, 0.0)
    if view.failures > 0:
        delay = policy.base_seconds * 2.0 ** min(view.failures, 32)
        return Turn(min(delay, policy.longest_delay), 0.0)
    value = weight(view.subscribers) * game_rate(view, now=now, policy=policy)
    delay = policy.base_seconds * (REFERENCE_RATE / value) ** (1 / URGENCY_POWER)
    return Turn(min(max(delay, policy.min_delay), policy.longest_delay), quantize(value))


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


def overdue(c: Candidate, *, now: float, policy: Policy) -> bool:
    """Never polled, never planned (no rate: rows from before the schedule, failing or
    closed players whose backoff ran out), or not polled for ``max_wait``."""
    return c.last_polled_at is None or c.rate <= 0 or now - c.last_polled_at >= policy.max_wait


def urgency(c: Candidate, *, now: float) -> float:
    """How much polling this player now is worth: ``rate * age ** URGENCY_POWER``."""
    age = 0.0 if c.last_polled_at is None else max(0.0, now - c.last_polled_at)
    return c.rate * math.pow(age, URGENCY_POWER)


def claim_key(c: Candidate, *, now: float, policy: Policy) -> tuple[int, float, float, int]:
    """Sort key of the claim among due players: overdue first (oldest poll first),
    then by urgency, then by due time."""
    if overdue(c, now=now, policy=policy):
        last = -math.inf if c.last_polled_at is None else c.last_polled_at
        return (0, last, c.next_poll_at, c.player_id)
    return (1, -urgency(c, now=now), c.next_poll_at, c.player_id)


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
