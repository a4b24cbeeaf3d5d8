"""The Lichess client against the simulator (Appendix B), and the simulator's own rules."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.lichess.client import LichessClient
from app.lichess.errors import (
    LichessRateLimited,
    LichessUnavailable,
    LichessUserNotFound,
)
from tests.fakes.lichess import LichessSimulator

UA = "chesscom-helper/test (contact: ci@example.com)"


@pytest.fixture
def lichess() -> LichessSimulator:
    sim = LichessSimulator()
    sim.add_user("DrNykterstein", title="GM")
    sim.add_user("Zhigalko_Sergei", title="GM")
    return sim


def make_client(sim: LichessSimulator, **kwargs: object) -> LichessClient:
    return LichessClient("http://lichess.test", user_agent=UA, transport=sim.transport(), **kwargs)  # type: ignore[arg-type]


async def test_status_says_who_plays_which_game_now(lichess: LichessSimulator) -> None:
    game = lichess.start_game("DrNykterstein", "3+2")
    lichess.start_stream("Zhigalko_Sergei")
    async with make_client(lichess) as client:
        statuses = {
            s.id: s
            for s in await client.get_statuses(["drnykterstein", "zhigalko_sergei", "nobody"])
        }
    assert set(statuses) == {"drnykterstein", "zhigalko_sergei"}  # unknown ids are left out
    playing = statuses["drnykterstein"].game
    assert playing is not None and (playing.id, playing.clock, playing.speed) == (
        game,
        "3+2",
        "blitz",
    )
    assert statuses["zhigalko_sergei"].streaming and statuses["zhigalko_sergei"].game is None
    assert lichess.requests[0].ids == 3


async def test_at_most_100_ids_a_request(lichess: LichessSimulator) -> None:
    async with make_client(lichess) as client:
        with pytest.raises(ValueError, match="100"):
            await client.get_statuses([f"user{i}" for i in range(101)])
    assert lichess.requests == []
    # The simulator refuses more, as Lichess does.
    async with httpx.AsyncClient(transport=lichess.transport(), base_url="http://l") as raw:
        ids = ",".join(f"u{i}" for i in range(101))
        assert (await raw.get("/api/users/status", params={"ids": ids})).status_code == 400


async def test_user_profile_and_unknown_user(lichess: LichessSimulator) -> None:
    async with make_client(lichess) as client:
        user = await client.get_user("drnykterstein")
        assert (user.id, user.username, user.title, user.closed) == (
            "drnykterstein",
            "DrNykterstein",
            "GM",
            False,
        )
        with pytest.raises(LichessUserNotFound):
            await client.get_user("nobody")
        lichess.close_user("Zhigalko_Sergei", tos_violation=True)
        assert (await client.get_user("zhigalko_sergei")).closed


async def test_garbage_and_outages_are_unavailable(lichess: LichessSimulator) -> None:
    async with make_client(lichess) as client:
        lichess.garbage()
        with pytest.raises(LichessUnavailable):
            await client.get_statuses(["drnykterstein"])
        lichess.fail(503)
        with pytest.raises(LichessUnavailable):
            await client.get_statuses(["drnykterstein"])
    lichess.latency_seconds = 0.5
    async with make_client(lichess, timeout=0.1) as slow:
        with pytest.raises(LichessUnavailable, match="timed out"):
            await slow.get_statuses(["drnykterstein"])


async def test_a_second_request_in_flight_gets_429_and_a_penalty(lichess: LichessSimulator) -> None:
    lichess.latency_seconds = 0.2
    async with make_client(lichess) as client:
        results = await asyncio.gather(
            client.get_statuses(["drnykterstein"]),
            client.get_statuses(["drnykterstein"]),
            return_exceptions=True,
        )
        assert sum(isinstance(r, LichessRateLimited) for r in results) == 1
        assert lichess.overlaps == 1 and lichess.peak_in_flight == 2
        # Asking again inside the minute after a 429 is refused again, and counted.
        with pytest.raises(LichessRateLimited):
            await client.get_statuses(["drnykterstein"])
        assert lichess.penalised == 1


async def test_the_token_is_sent_as_bearer(lichess: LichessSimulator) -> None:
    async with make_client(lichess, token="lip_secret") as client:
        await client.get_statuses(["drnykterstein"])
    assert lichess.requests[0].headers["authorization"] == "Bearer lip_secret"
    async with make_client(lichess) as client:
        await client.get_statuses(["drnykterstein"])
    assert "authorization" not in lichess.requests[1].headers
