"""Player keys, Lichess's speed rule and the pure Lichess session rules (SPEC §4, §10, B)."""

from __future__ import annotations

import pytest

from app.lichess.payloads import GameMeta, UserStatus, speed_of, time_class_of
from app.players.keys import InvalidKey, Platform, parse_key
from worker.sources.lichess_rules import LichessState, needs_write, observe_lichess

GAP = 1800.0


@pytest.mark.parametrize(
    ("text", "platform", "username", "key"),
    [
        ("hikaru", Platform.chesscom, "hikaru", "hikaru"),
        ("  Hikaru ", Platform.chesscom, "hikaru", "hikaru"),
        ("lichess:DrNykterstein", Platform.lichess, "drnykterstein", "lichess:drnykterstein"),
        ("LICHESS:ab", Platform.lichess, "ab", "lichess:ab"),
        ("lichess:" + "a" * 30, Platform.lichess, "a" * 30, "lichess:" + "a" * 30),
    ],
)
def test_a_player_key_names_a_platform_and_a_username(
    text: str, platform: Platform, username: str, key: str
) -> None:
    parsed = parse_key(text)
    assert (parsed.platform, parsed.username, parsed.key) == (platform, username, key)


@pytest.mark.parametrize(
    "text",
    [
        "lichess:",
        "lichess:a",
        "foo:bar",
        "chesscom:hikaru",
        "ab",
        "lichess:" + "a" * 31,
        "lichess:a b",
        "hi:",
        ":hikaru",
        "a" * 26,
    ],
)
def test_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(InvalidKey):
        parse_key(text)


def test_a_key_longer_than_80_characters_is_refused() -> None:
    with pytest.raises(InvalidKey):
        parse_key("x" * 100)


def test_an_explicit_platform_applies_to_a_bare_username() -> None:
    assert parse_key("ab", "lichess").key == "lichess:ab"
    assert parse_key("lichess:ab", "lichess").key == "lichess:ab"
    with pytest.raises(InvalidKey):
        parse_key("lichess:abc", "chesscom")


@pytest.mark.parametrize(
    ("clock", "speed", "time_class"),
    [
        ("0+0", "ultraBullet", "bullet"),  # 0 s
        ("0.25+0", "ultraBullet", "bullet"),  # 15 s
        ("0.5+0", "bullet", "bullet"),  # 30 s: not under 30
        ("1+0", "bullet", "bullet"),
        ("2+1", "bullet", "bullet"),  # 120 + 40 = 160
        ("3+0", "blitz", "blitz"),  # 180: not under 180
        ("3+2", "blitz", "blitz"),  # 260
        ("5+3", "blitz", "blitz"),  # 420
        ("5+5", "rapid", "rapid"),  # 500
        ("10+0", "rapid", "rapid"),
        ("15+10", "rapid", "rapid"),  # 1300
        ("20+10", "classical", "classical"),  # 1600
        ("30+0", "classical", "classical"),  # 1800
        (None, "correspondence", "daily"),
        ("", "correspondence", "daily"),
        ("garbage", "correspondence", "daily"),
    ],
)
def test_speed_follows_from_the_clock(clock: str | None, speed: str, time_class: str) -> None:
    assert speed_of(clock) == speed
    assert time_class_of(speed) == time_class


def status(
    game: str | None = None, clock: str | None = "3+2", streaming: bool = False
) -> UserStatus:
    playing = None if game is None else GameMeta(id=game, clock=clock)
    return UserStatus(
        id="drnykterstein", name="DrNykterstein", playing=playing, streaming=streaming
    )


def run(reads: list[tuple[float, UserStatus | None]]) -> list[str | None]:
    """Feed reads in order; the game ids of the sessions announced (None per silent read)."""
    state = LichessState()
    announced: list[str | None] = []
    for now, read in reads:
        seen = observe_lichess(state, read, now=now, gap_seconds=GAP)
        state = seen.state
        announced.append(None if seen.session is None else seen.session.game.event_id)
    return announced


@pytest.mark.parametrize(
    ("reads", "announced"),
    [
        # The first read is a baseline: a game already running never alerts.
        ([(0, status("AAAAAAAA")), (5, status("AAAAAAAA"))], [None, None]),
        # ... nor does the next game of that session.
        ([(0, status("AAAAAAAA")), (300, status("BBBBBBBB"))], [None, None]),
        # A game after the baseline alerts once, at its start.
        (
            [(0, status()), (5, status("AAAAAAAA")), (10, status("AAAAAAAA"))],
            [None, "AAAAAAAA", None],
        ),
        # A second game in the same session is silent.
        (
            [(0, status()), (5, status("AAAAAAAA")), (400, status()), (460, status("BBBBBBBB"))],
            [None, "AAAAAAAA", None, None],
        ),
        # A game after a gap of at least LIVE_SESSION_GAP_SECONDS opens a new session.
        (
            [
                (0, status()),
                (5, status("AAAAAAAA")),
                (400, status()),
                (400 + GAP, status("BBBBBBBB")),
            ],
            [None, "AAAAAAAA", None, "BBBBBBBB"],
        ),
        # Correspondence games never alert, and do not count as live play.
        (
            [(0, status()), (5, status("AAAAAAAA", clock=None)), (10, status("BBBBBBBB"))],
            [None, None, "BBBBBBBB"],
        ),
        # A game missing from one answer and back is the same game.
        (
            [(0, status()), (5, status("AAAAAAAA")), (10, None), (15, status("AAAAAAAA"))],
            [None, "AAAAAAAA", None, None],
        ),
        # A read older than the one applied changes nothing.
        ([(0, status()), (10, status()), (5, status("AAAAAAAA"))], [None, None, None]),
    ],
)
def test_lichess_sessions(
    reads: list[tuple[float, UserStatus | None]], announced: list[str | None]
) -> None:
    assert run(reads) == announced


def test_a_session_names_the_game_its_speed_and_the_watch_link() -> None:
    state = observe_lichess(LichessState(), status(), now=0, gap_seconds=GAP).state
    seen = observe_lichess(state, status("q7ZvsdUF", clock="3+2"), now=100, gap_seconds=GAP)
    assert seen.session is not None
    game = seen.session.game
    assert (game.event_id, game.url, game.time_class, game.time_control) == (
        "q7ZvsdUF",
        "https://lichess.org/q7ZvsdUF",
        "blitz",
        "3+2",
    )
    assert seen.is_playing and seen.current_game_url == "https://lichess.org/q7ZvsdUF"


def test_a_playing_player_is_not_rewritten_every_sweep() -> None:
    state = observe_lichess(LichessState(), status("AAAAAAAA"), now=0, gap_seconds=GAP).state
    later = observe_lichess(state, status("AAAAAAAA"), now=5, gap_seconds=GAP).state
    assert not needs_write(state, later)
    much_later = observe_lichess(state, status("AAAAAAAA"), now=40, gap_seconds=GAP).state
    assert needs_write(state, much_later)


def test_state_round_trips_through_json() -> None:
    state = observe_lichess(LichessState(), status("AAAAAAAA"), now=7, gap_seconds=GAP).state
    assert LichessState.from_json(state.to_json()) == state
    assert LichessState.from_json(None) == LichessState()
