"""Tests for the pure live-match detection rules of SPEC §6 (worker/detection.py)."""

from __future__ import annotations

from calendar import timegm
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.detection import (
    DetectionResult,
    DetectionState,
    GameRecord,
    detect,
    is_playing,
    ordered_games,
    split_sessions,
)

GAP = 1800
T0 = 1_700_000_000
HOUR = 3600
DAY = 86_400


def game(
    event_id: str,
    end: int,
    *,
    start: int | None = None,
    duration: int = 300,
    time_class: str = "blitz",
) -> GameRecord:
    """A game ending at ``T0 + end``; starts ``duration`` seconds earlier unless given."""
    end_time = T0 + end
    return GameRecord(
        event_id=event_id,
        url=f"https://www.chess.com/game/live/{event_id}",
        end_time=end_time,
        start_time=end_time - duration if start is None else T0 + start,
        time_class=time_class,
        time_control="1/86400" if time_class == "daily" else "180+2",
        white="alice",
        black="bob",
        white_rating=1500,
        black_rating=1480,
        white_result="win",
        black_result="resigned",
        rated=True,
    )


def daily(event_id: str, end: int) -> GameRecord:
    return game(event_id, end, duration=5 * DAY, time_class="daily")


def run(
    baseline: Sequence[GameRecord], poll: Sequence[GameRecord], *, now: int | None = None
) -> tuple[DetectionResult, DetectionResult]:
    """Baseline poll, then a second poll; ``now`` defaults to just after the last game."""
    all_games = [*baseline, *poll]
    now = now if now is not None else max((g.end_time for g in all_games), default=T0) + 60
    first = detect(DetectionState(), baseline, now=now, gap_seconds=GAP)
    second = detect(first.state, poll, now=now, gap_seconds=GAP)
    return first, second


def sessions_of(result: DetectionResult) -> list[tuple[str, list[str]]]:
    return [(s.event_id, [g.event_id for g in s.games]) for s in result.new_sessions]


# --------------------------------------------------------------------- table-driven rules

OLD = [game("a1", 0), game("a2", 600)]  # one live session, baseline history

CASES = [
    pytest.param(OLD, [], [], id="nothing-new"),
    pytest.param(OLD, [*OLD, game("b1", 600 + 900)], [], id="continues-baseline-session"),
    pytest.param(OLD, [*OLD, game("b1", 600 + GAP + 300)], [("b1", ["b1"])], id="after-gap"),
    pytest.param(
        OLD,
        [*OLD, game("b1", 600 + GAP + 300, duration=300)],  # start - prev end == GAP exactly
        [("b1", ["b1"])],
        id="gap-boundary-opens",
    ),
    pytest.param(
        OLD,
        [*OLD, game("b1", 600 + GAP + 299, duration=300)],  # one second short of the gap
        [],
        id="gap-boundary-minus-one-continues",
    ),
    pytest.param(
        OLD,
        [game("b1", 5000), game("b2", 5400), game("c1", 5400 + GAP + 400), game("c2", 9000)],
        [("b1", ["b1", "b2"]), ("c1", ["c1", "c2"])],
        id="two-sessions-one-poll",
    ),
    pytest.param(OLD, [daily("d1", 5000), daily("d2", 50_000)], [], id="daily-never-notifies"),
    pytest.param(
        OLD,
        [game("b1", 5000), daily("d1", 5300), game("b2", 5600)],
        [("b1", ["b1", "b2"])],
        id="daily-does-not-split",
    ),
    pytest.param(
        OLD,
        [game("b1", 5000), daily("d1", 5000 + GAP), game("b2", 5000 + 2 * GAP + 300)],
        [("b1", ["b1"]), ("b2", ["b2"])],
        id="daily-does-not-join",
    ),
    pytest.param(
        OLD,
        [game("b2", 5300), game("b1", 5000), game("c1", 20_000), game("b3", 5600)],
        [("b1", ["b1", "b2", "b3"]), ("c1", ["c1"])],
        id="unordered-input",
    ),
    pytest.param(
        OLD,
        [game("b1", 5000), game("b1", 5000), *OLD, game("b2", 5300), game("b2", 5300)],
        [("b1", ["b1", "b2"])],
        id="duplicates",
    ),
    pytest.param([], [game("b1", 0), game("b2", 300)], [("b1", ["b1", "b2"])], id="empty-baseline"),
    pytest.param([daily("d0", 0)], [game("b1", 300)], [("b1", ["b1"])], id="daily-only-baseline"),
    pytest.param(
        OLD, [game("late", 300), game("a0", -5000)], [], id="older-than-last-seen-is-never-new"
    ),
    pytest.param(
        OLD,
        [game("x1", 0, start=-HOUR), game("x2", 9000, start=8950)],
        [("x2", ["x2"])],
        id="overlapping-start-continues",
    ),
]


@pytest.mark.parametrize(("baseline", "poll", "expected"), CASES)
def test_rules(
    baseline: list[GameRecord], poll: list[GameRecord], expected: list[tuple[str, list[str]]]
) -> None:
    first, second = run(baseline, poll)
    assert first.new_sessions == ()
    assert first.new_games == ()
    assert sessions_of(second) == expected
    for session in second.new_sessions:
        assert session.started_at == session.games[0].start_time


def test_baseline_is_silent_and_records_latest_session() -> None:
    games = [game("a1", 0), game("a2", 600), game("s1", 10_000), game("s2", 10_400)]
    result = detect(DetectionState(), games, now=T0 + 10_500, gap_seconds=GAP)
    assert result.new_sessions == () and result.new_games == ()
    assert result.state == DetectionState(
        baseline_done=True,
        last_seen_end=T0 + 10_400,
        last_seen_ids=frozenset({"s2"}),
        last_live_end=T0 + 10_400,
        session_event_id="s1",
        session_started_at=T0 + 10_000 - 300,
    )
    assert result.is_playing


def test_continuing_game_keeps_session_id() -> None:
    _, second = run(OLD, [*OLD, game("b1", 1500)])
    assert second.new_sessions == ()
    assert [g.event_id for g in second.new_games] == ["b1"]
    assert second.state.session_event_id == "a1"
    assert second.state.last_live_end == T0 + 1500


def test_daily_games_advance_last_seen_only() -> None:
    first, second = run(OLD, [daily("d1", 5000)])
    assert [g.event_id for g in second.new_games] == ["d1"]
    assert second.state.last_seen_end == T0 + 5000
    assert second.state.last_live_end == first.state.last_live_end
    assert second.state.session_event_id == first.state.session_event_id


def test_new_games_include_live_and_daily_in_order() -> None:
    _, second = run(OLD, [game("b2", 5600), daily("d1", 5300), game("b1", 5000)])
    assert [g.event_id for g in second.new_games] == ["b1", "d1", "b2"]


def test_tie_on_end_time_across_polls() -> None:
    """A game ending in the same second as the last seen one is still new exactly once."""
    base = [game("m", 0)]
    first = detect(DetectionState(), base, now=T0, gap_seconds=GAP)
    assert first.state.last_seen_ids == frozenset({"m"})
    late = game("n", 0, start=-GAP - 600, duration=0)
    poll = [*base, late, game("a", 0)]
    second = detect(first.state, poll, now=T0, gap_seconds=GAP)
    assert [g.event_id for g in second.new_games] == ["a", "n"]
    assert second.state.last_seen_ids == frozenset({"m", "n", "a"})
    third = detect(second.state, poll, now=T0, gap_seconds=GAP)
    assert third.new_games == () and third.state == second.state


def test_month_rollover_is_one_session() -> None:
    """Previous + current month archives concatenated; 23:59 and 00:05 are one session."""
    jan_31_2359 = timegm((2024, 1, 31, 23, 59, 0, 0, 0, 0))
    feb_1_0005 = timegm((2024, 2, 1, 0, 5, 0, 0, 0, 0))
    old = game("jan-old", 0)
    jan_game = GameRecord("jan", "u1", jan_31_2359, jan_31_2359 - 240, "blitz")
    feb_game = GameRecord("feb", "u2", feb_1_0005 + 180, feb_1_0005, "blitz")
    jan_archive, feb_archive = [old, jan_game], [feb_game]
    assert old.end_time < jan_31_2359 - 10 * GAP

    first = detect(DetectionState(), [old], now=old.end_time, gap_seconds=GAP)
    second = detect(first.state, jan_archive, now=jan_31_2359 + 60, gap_seconds=GAP)
    assert sessions_of(second) == [("jan", ["jan"])]
    third = detect(second.state, jan_archive + feb_archive, now=feb_1_0005, gap_seconds=GAP)
    assert third.new_sessions == ()
    assert [g.event_id for g in third.new_games] == ["feb"]
    assert third.state.session_event_id == "jan"

    # Both games in one poll after the baseline: still exactly one session.
    once = detect(first.state, feb_archive + jan_archive, now=feb_1_0005, gap_seconds=GAP)
    assert sessions_of(once) == [("jan", ["jan", "feb"])]


@pytest.mark.parametrize(
    ("since_end", "expected"),
    [(0, True), (1, True), (GAP - 1, True), (GAP, False), (GAP + 1, False), (-30, True)],
)
def test_is_playing_window(since_end: int, expected: bool) -> None:
    end = T0 + 1000
    assert is_playing(end, now=end + since_end, gap_seconds=GAP) is expected
    _, second = run([], [game("b1", 1000)], now=end + since_end)
    assert second.is_playing is expected


def test_is_playing_never_played() -> None:
    assert not is_playing(None, now=T0, gap_seconds=GAP)
    assert not run([], [daily("d", 0)], now=T0)[1].is_playing


def test_is_playing_ignores_recent_daily() -> None:
    _, second = run(OLD, [daily("d1", 5000)], now=T0 + 5001)
    assert not second.is_playing


@pytest.mark.parametrize(("baseline", "poll", "expected"), CASES)
def test_detect_is_idempotent(
    baseline: list[GameRecord], poll: list[GameRecord], expected: object
) -> None:
    first, second = run(baseline, poll)
    again = detect(second.state, poll, now=T0, gap_seconds=GAP)
    assert again.new_sessions == () and again.new_games == ()
    assert again.state == second.state
    base_again = detect(first.state, baseline, now=T0, gap_seconds=GAP)
    assert base_again.state == first.state and base_again.new_games == ()


def test_split_sessions() -> None:
    games = [game("b", 300), game("a", 0), daily("d", 400), game("c", 300 + GAP + 400)]
    assert [[g.event_id for g in s] for s in split_sessions(games, GAP)] == [["a", "b"], ["c"]]
    assert split_sessions([], GAP) == []


def test_ordered_games_dedupes() -> None:
    games = [game("b", 10), game("a", 10), game("b", 10), game("c", 5)]
    assert [g.event_id for g in ordered_games(games)] == ["c", "a", "b"]


# ------------------------------------------------------------------------ state JSON


def test_state_json_round_trip() -> None:
    state = DetectionState(True, T0, frozenset({"b", "a"}), T0 - 5, "s", T0 - 100)
    data = state.to_json()
    assert data["last_seen_ids"] == ["a", "b"]
    assert DetectionState.from_json(data) == state


@pytest.mark.parametrize("data", [None, {}, {"unknown": 1}, {"last_seen_ids": None}])
def test_state_from_json_tolerates_missing_keys(data: dict[str, object] | None) -> None:
    assert DetectionState.from_json(data) == DetectionState()


def test_state_from_partial_json() -> None:
    state = DetectionState.from_json({"baseline_done": True, "last_seen_end": T0})
    assert state == DetectionState(baseline_done=True, last_seen_end=T0)


# ------------------------------------------------------------------ property-based

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def game_lists(draw: st.DrawFn) -> list[GameRecord]:
    """Games with unique ids whose end_times often tie and whose gaps straddle GAP."""
    n = draw(st.integers(0, 14))
    ids = draw(st.lists(st.text("abcdefgh", min_size=3, max_size=3), min_size=n, max_size=n,
                        unique=True))  # fmt: skip
    games, end = [], T0
    for event_id in ids:
        end += draw(st.sampled_from([0, 1, 60, GAP - 1, GAP, GAP + 1, 3 * GAP]))
        duration = draw(st.sampled_from([0, 1, 120, 900, GAP]))
        time_class = draw(st.sampled_from(["blitz", "bullet", "rapid", "daily"]))
        games.append(GameRecord(event_id, event_id, end, end - duration, time_class))
    return games


def baseline_split(data: st.DataObject, games: list[GameRecord]) -> tuple[DetectionState, int]:
    """Run a baseline over a sorted prefix of ``games``; return its state and length."""
    ordered = ordered_games(games)
    k = data.draw(st.integers(0, len(ordered)))
    state = detect(DetectionState(), ordered[:k], now=T0, gap_seconds=GAP).state
    return state, k


def summary(result: DetectionResult) -> tuple[object, ...]:
    return (result.state, sessions_of(result), result.new_games, result.is_playing)


@PROPS
@given(games=game_lists(), data=st.data())
def test_prop_order_and_duplicates_do_not_matter(
    games: list[GameRecord], data: st.DataObject
) -> None:
    state, _ = baseline_split(data, games)
    shuffled = data.draw(st.permutations(games))
    dups = data.draw(st.lists(st.sampled_from(games), max_size=6)) if games else []
    now = T0 + data.draw(st.integers(0, 30 * GAP))
    for start in (DetectionState(), state):
        expected = detect(start, games, now=now, gap_seconds=GAP)
        got = detect(start, [*shuffled, *dups], now=now, gap_seconds=GAP)
        assert summary(got) == summary(expected)


@PROPS
@given(games=game_lists(), data=st.data())
def test_prop_chunked_polls_match_single_poll(games: list[GameRecord], data: st.DataObject) -> None:
    state, k = baseline_split(data, games)
    ordered = ordered_games(games)
    cuts = sorted(data.draw(st.lists(st.integers(k, len(ordered)), max_size=5)))
    cumulative = data.draw(st.booleans())  # archives grow, or only the increment is passed

    whole = detect(state, ordered, now=T0, gap_seconds=GAP)
    step_state, ids, seen = state, list[str](), list[GameRecord]()
    for lo, hi in zip([k, *cuts], [*cuts, len(ordered)], strict=True):
        chunk = ordered[:hi] if cumulative else ordered[lo:hi]
        step = detect(step_state, chunk, now=T0, gap_seconds=GAP)
        ids += [s.event_id for s in step.new_sessions]
        seen += step.new_games
        step_state = step.state
    assert ids == [s.event_id for s in whole.new_sessions]
    assert tuple(seen) == whole.new_games
    assert step_state == whole.state


@PROPS
@given(games=game_lists(), data=st.data())
def test_prop_sessions_count_gaps(games: list[GameRecord], data: st.DataObject) -> None:
    state, _ = baseline_split(data, games)
    result = detect(state, games, now=T0, gap_seconds=GAP)
    live = [g for g in result.new_games if g.is_live]
    ends = [state.last_live_end, *(g.end_time for g in live)]
    gaps = sum(1 for prev, g in zip(ends, live, strict=False)
               if prev is None or g.start_time - prev >= GAP)  # fmt: skip
    assert len(result.new_sessions) == gaps
    # Sessions are disjoint runs of new live games; only a leading run continuing an
    # earlier session is left without a NewSession.
    in_sessions = [g for s in result.new_sessions for g in s.games]
    assert in_sessions == live[len(live) - len(in_sessions) :]
    assert len({s.event_id for s in result.new_sessions}) == len(result.new_sessions)
    if result.new_sessions:
        assert result.state.session_event_id == result.new_sessions[-1].event_id


@PROPS
@given(games=game_lists(), data=st.data())
def test_prop_detect_is_idempotent(games: list[GameRecord], data: st.DataObject) -> None:
    state, _ = baseline_split(data, games)
    for start in (DetectionState(), state):
        first = detect(start, games, now=T0, gap_seconds=GAP)
        again = detect(first.state, games, now=T0, gap_seconds=GAP)
        assert again.state == first.state
        assert again.new_sessions == () and again.new_games == ()
        assert DetectionState.from_json(first.state.to_json()) == first.state


@PROPS
@given(games=game_lists())
def test_prop_baseline_never_notifies(games: list[GameRecord]) -> None:
    result = detect(DetectionState(), games, now=T0, gap_seconds=GAP)
    assert result.new_sessions == () and result.new_games == ()
    live = split_sessions(games, GAP)
    assert result.state.session_event_id == (live[-1][0].event_id if live else None)
