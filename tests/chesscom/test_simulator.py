"""The simulator's own realism: payloads our models accept, listings, validators."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from app.chesscom.payloads import Archive, Game, Profile
from tests.chesscom.conftest import USER_AGENT
from tests.fakes.chesscom import ChessComSimulator

FEB_29 = int(datetime(2024, 2, 29, 23, 59, 30, tzinfo=UTC).timestamp())


def http(simulator: ChessComSimulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=simulator.transport(),
        base_url="http://sim.test",
        headers={"User-Agent": USER_AGENT},
    )


async def test_games_are_realistic_and_filed_for_both_players() -> None:
    simulator = ChessComSimulator()
    simulator.add_player("Hikaru", last_online=0)
    simulator.add_player("FabianoCaruana")
    daily = simulator.add_game("hikaru", end_time=FEB_29, time_class="daily", result="agreed")
    live = simulator.add_game("hikaru", end_time=FEB_29 - 60, opponent="FabianoCaruana")

    parsed = Game.model_validate(live)
    assert parsed.url.startswith("https://www.chess.com/game/live/")
    assert parsed.white.username == "Hikaru" and parsed.black.username == "FabianoCaruana"
    assert parsed.pgn_headers["Result"] == "1-0"
    assert parsed.pgn_headers["EndTime"] == "23:58:30"
    assert parsed.started_at_unix == FEB_29 - 60 - 430
    daily_game = Game.model_validate(daily)
    assert daily_game.url.startswith("https://www.chess.com/game/daily/")
    assert daily_game.time_control == "1/86400" and daily_game.start_time is not None
    assert daily_game.pgn_headers["Result"] == "1/2-1/2"

    assert [g["uuid"] for g in simulator.games("hikaru")] == [live["uuid"], daily["uuid"]]
    assert [g["uuid"] for g in simulator.games("fabianocaruana")] == [live["uuid"]]

    async with http(simulator) as client:
        profile = Profile.model_validate_json((await client.get("/pub/player/hikaru")).content)
        assert profile.last_online == FEB_29
        listing = (await client.get("/pub/player/hikaru/games/archives")).json()
        assert listing == {"archives": ["http://sim.test/pub/player/hikaru/games/2024/02"]}
        month = await client.get("/pub/player/HIKARU/games/2024/02")
        assert len(Archive.model_validate_json(month.content).games) == 2


async def test_errors_look_like_chesscom() -> None:
    simulator = ChessComSimulator()
    async with http(simulator) as client:
        missing = await client.get("/pub/player/ghost")
        assert missing.status_code == 404
        assert missing.json() == {"code": 0, "message": 'User "ghost" not found.'}
        assert (await client.get("/pub/nothing/here")).status_code == 404
        assert (await client.get("/pub/player/ghost/games/2024/1")).status_code == 404
        anonymous = await client.get("/pub/player/ghost", headers={"User-Agent": "curl/8"})
        assert anonymous.status_code == 403


async def test_if_modified_since_and_weak_etags() -> None:
    now = [1_700_000_000.0]
    simulator = ChessComSimulator(clock=lambda: now[0])
    simulator.add_player("hikaru")
    async with http(simulator) as client:
        first = await client.get("/pub/player/hikaru")
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        now[0] += 100
        weak = await client.get("/pub/player/hikaru", headers={"If-None-Match": f"W/{etag}"})
        assert weak.status_code == 304 and weak.content == b""
        assert weak.headers["last-modified"] == modified
        ims = await client.get("/pub/player/hikaru", headers={"If-Modified-Since": modified})
        assert ims.status_code == 304
        simulator.update_player("hikaru", followers=1)
        changed = await client.get("/pub/player/hikaru", headers={"If-Modified-Since": modified})
        assert changed.status_code == 200 and changed.headers["last-modified"] != modified
