"""The Published-Data API models: realistic payloads, unknown fields, start-time estimates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from app.chesscom.payloads import (
    Archive,
    Game,
    Profile,
    longest_live_game_seconds,
    pgn_start_unix,
)

HIKARU: dict[str, Any] = {
    "avatar": "https://images.chesscomfiles.com/uploads/v1/user/15448422.88c010c1.200x200o.3c5619f5441e.png",
    "player_id": 15448422,
    "@id": "https://api.chess.com/pub/player/hikaru",
    "url": "https://www.chess.com/member/Hikaru",
    "name": "Hikaru Nakamura",
    "username": "hikaru",
    "title": "GM",
    "followers": 1225729,
    "country": "https://api.chess.com/pub/country/US",
    "location": "Florida",
    "last_online": 1706745600,
    "joined": 1389043258,
    "status": "premium",
    "is_streamer": True,
    "twitch_url": "https://twitch.tv/gmhikaru",
    "verified": False,
    "league": "Legend",
    "streaming_platforms": [{"type": "twitch", "channel_url": "https://twitch.tv/gmhikaru"}],
    "fide": 2789,  # not in our model: must be ignored
}

PGN = """[Event "Live Chess"]
[Site "Chess.com"]
[Date "2024.01.31"]
[Round "-"]
[White "Hikaru"]
[Black "FabianoCaruana"]
[Result "1-0"]
[UTCDate "2024.01.31"]
[UTCTime "23:58:10"]
[TimeControl "180+2"]
[StartTime "23:58:10"]
[EndDate "2024.02.01"]
[EndTime "0:05:02"]

1. e4 e5 2. Nf3 Nc6 1-0
"""

GAME: dict[str, Any] = {
    "url": "https://www.chess.com/game/live/98765432101",
    "pgn": PGN,
    "time_control": "180+2",
    "end_time": 1706745902,  # 2024-02-01T00:05:02Z
    "rated": True,
    "accuracies": {"white": 91.2, "black": 84.73},
    "tcn": "mC0KgvZJ",
    "uuid": "3f1c2a9e-c0c1-11ee-8e5b-6cfe544c0428",
    "initial_setup": "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
    "fen": "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3",
    "time_class": "blitz",
    "rules": "chess",
    "white": {
        "rating": 3290,
        "result": "win",
        "@id": "https://api.chess.com/pub/player/hikaru",
        "username": "Hikaru",
        "uuid": "09f5a9b2-0000-11e3-8003-000000000000",
    },
    "black": {
        "rating": 3180,
        "result": "resigned",
        "@id": "https://api.chess.com/pub/player/fabianocaruana",
        "username": "FabianoCaruana",
        "uuid": "1b7e3b1e-0000-11e3-8003-000000000000",
    },
    "eco": "https://www.chess.com/openings/Kings-Pawn-Opening-Kings-Knight-Variation",
    "brand_new_field": {"anything": [1, 2, 3]},
}


def game(**changes: Any) -> Game:
    return Game.model_validate({**GAME, **changes})


def test_profile_parses_a_real_looking_payload() -> None:
    profile = Profile.model_validate(HIKARU)
    assert profile.player_id == 15448422
    assert profile.username == "hikaru"
    assert profile.id == "https://api.chess.com/pub/player/hikaru"
    assert profile.title == "GM"
    assert profile.country_code == "US"
    assert profile.joined_at == datetime(2014, 1, 6, 21, 20, 58, tzinfo=UTC)
    assert profile.last_online_at == datetime(2024, 2, 1, tzinfo=UTC)
    assert profile.streaming_platform_names == ["twitch"]
    assert not profile.is_closed
    assert not hasattr(profile, "fide")


def test_profile_tolerates_missing_optional_fields() -> None:
    profile = Profile.model_validate(
        {"player_id": 1, "username": "newbie", "url": "https://www.chess.com/member/Newbie"}
    )
    assert profile.name is None and profile.title is None and profile.country_code is None
    assert profile.joined_at is None and profile.last_online_at is None
    assert profile.followers == 0 and profile.streaming_platforms == []
    assert profile.status == "basic"


@pytest.mark.parametrize(
    ("platforms", "names"),
    [
        (["twitch", "youtube"], ["twitch", "youtube"]),
        ([{"type": "youtube", "channel_url": "https://youtube.com/@x"}], ["youtube"]),
        ([{"channel_url": "no type"}, 42], []),
    ],
)
def test_streaming_platforms_of_either_shape(platforms: list[Any], names: list[str]) -> None:
    profile = Profile.model_validate({**HIKARU, "streaming_platforms": platforms})
    assert profile.streaming_platform_names == names


@pytest.mark.parametrize("status", ["closed", "closed:fair_play_violations"])
def test_closed_statuses(status: str) -> None:
    assert Profile.model_validate({**HIKARU, "status": status}).is_closed


@pytest.mark.parametrize(
    "bad",
    [{"player_id": "not a number"}, {"username": None}, {"followers": [1]}, {"joined": "x"}],
)
def test_profile_validates_types(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Profile.model_validate({**HIKARU, **bad})


def test_game_parses_and_ignores_unknown_fields() -> None:
    parsed = game()
    assert parsed.event_id == GAME["uuid"]
    assert parsed.is_live
    assert parsed.white.username == "Hikaru" and parsed.white.id == GAME["white"]["@id"]
    assert parsed.black.result == "resigned"
    assert parsed.accuracies == {"white": 91.2, "black": 84.73}
    assert parsed.ended_at == datetime(2024, 2, 1, 0, 5, 2, tzinfo=UTC)
    assert parsed.side_of("HIKARU") is parsed.white
    assert parsed.opponent_of("hikaru") is parsed.black
    assert parsed.opponent_of("someone_else") is None


def test_game_event_id_falls_back_to_url() -> None:
    assert game(uuid=None).event_id == GAME["url"]
    data = dict(GAME)
    del data["uuid"]
    assert Game.model_validate(data).event_id == GAME["url"]


def test_game_requires_what_detection_needs() -> None:
    for field in ("url", "end_time", "time_class", "white"):
        data = dict(GAME)
        del data[field]
        with pytest.raises(ValidationError):
            Game.model_validate(data)


def test_daily_game_is_not_live() -> None:
    assert not game(time_class="daily", url="https://www.chess.com/game/daily/612345001").is_live


def test_started_at_uses_utc_headers_across_midnight() -> None:
    parsed = game()
    assert parsed.started_at == datetime(2024, 1, 31, 23, 58, 10, tzinfo=UTC)
    assert parsed.started_at_unix == 1706745490


def test_started_at_falls_back_to_date_and_start_time() -> None:
    pgn = '[Date "2024.01.31"]\n[StartTime "23:59:00"]\n\n1. e4 1-0'
    assert game(pgn=pgn).started_at_unix == 1706745540


def test_started_at_uses_start_time_field_then_end_time() -> None:
    assert game(pgn="", start_time=1706740000).started_at_unix == 1706740000
    assert game(pgn="").started_at_unix == GAME["end_time"]
    nonsense = '[UTCDate "2024.13.45"]\n[UTCTime "99:00:00"]'
    assert game(pgn=nonsense).started_at_unix == GAME["end_time"]


def test_started_at_is_never_after_end_time() -> None:
    pgn = '[UTCDate "2024.02.01"]\n[UTCTime "00:10:00"]'
    assert game(pgn=pgn).started_at_unix == GAME["end_time"]


def test_a_pgn_clock_that_cannot_be_this_game_s_is_not_believed() -> None:
    # A template PGN stamped with another day (or a start hours before a 3+2 game
    # ended) would make every later game look like part of one old session.
    stale = '[UTCDate "2024.01.20"]\n[UTCTime "12:00:00"]'
    assert game(pgn=stale).started_at_unix == GAME["end_time"]
    hours_before = '[UTCDate "2024.01.31"]\n[UTCTime "21:00:00"]'
    assert game(pgn=hours_before).started_at_unix == GAME["end_time"]
    # The same clock is fine for a game long enough to have started then.
    assert game(pgn=hours_before, time_control="5400+30").started_at_unix == 1706734800
    # Daily games keep theirs: they last days.
    daily = game(pgn=stale, time_class="daily", time_control="1/86400")
    assert daily.started_at_unix == 1705752000


@pytest.mark.parametrize(
    ("time_control", "longest"),
    [("60", 240), ("180+2", 960), ("600", 1320), ("900+10", 4320), ("", 14400), ("1/86400", 14400)],
)
def test_longest_live_game(time_control: str, longest: int) -> None:
    assert longest_live_game_seconds(time_control) == longest


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"UTCDate": "2024.01.31", "UTCTime": "12:34:56"}, 1706704496),
        ({"UTCDate": "2024.01.31"}, None),
        ({"Date": "2024.01.31", "StartTime": "12:34:56"}, 1706704496),
        (
            {"UTCDate": "bad", "UTCTime": "12:34:56", "Date": "2024.01.31", "StartTime": "1:02:03"},
            1706662923,
        ),
        ({}, None),
    ],
)
def test_pgn_start_unix(headers: dict[str, str], expected: int | None) -> None:
    assert pgn_start_unix(headers) == expected


def test_archive_parses_games_and_tolerates_empty() -> None:
    archive = Archive.model_validate({"games": [GAME, {**GAME, "uuid": "other"}]})
    assert [g.event_id for g in archive.games] == [GAME["uuid"], "other"]
    assert Archive.model_validate({"games": []}).games == []
    # One malformed game is dropped and counted; the others still count.
    mixed = Archive.model_validate({"games": [{**GAME, "end_time": "yesterday"}, GAME]})
    assert [g.event_id for g in mixed.games] == [GAME["uuid"]]
    assert mixed.skipped == 1
    with pytest.raises(ValidationError):
        Archive.model_validate({"games": "not a list"})
