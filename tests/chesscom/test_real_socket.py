"""The client and the simulator over a real TCP socket (uvicorn in a thread)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from app.chesscom.client import ChessComClient, Fetched, NotModified
from app.chesscom.errors import ChessComUnavailable, RateLimited
from tests.chesscom.conftest import USER_AGENT
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.server import run_asgi_in_thread

MARCH_3 = int(datetime(2024, 3, 3, 20, 15, tzinfo=UTC).timestamp())


@pytest.fixture
def served() -> Iterator[tuple[ChessComSimulator, str]]:
    simulator = ChessComSimulator(max_concurrent=3, latency_seconds=0.02)
    with run_asgi_in_thread(simulator) as root:
        yield simulator, root + "/pub"


async def test_profile_archive_and_304_over_http(served: tuple[ChessComSimulator, str]) -> None:
    simulator, base = served
    simulator.add_player("MagnusCarlsen", title="GM")
    async with ChessComClient(base, user_agent=USER_AGENT, timeout=5) as chesscom:
        profile = await chesscom.get_profile("MagnusCarlsen")
        assert isinstance(profile, Fetched) and profile.data.title == "GM"

        empty = await chesscom.get_archive("magnuscarlsen", 2024, 3)
        assert isinstance(empty, Fetched) and empty.data.games == []
        assert isinstance(
            await chesscom.get_archive("magnuscarlsen", 2024, 3, etag=empty.etag), NotModified
        )

        # The test thread changes the world while the server thread serves it.
        game = simulator.add_game("magnuscarlsen", end_time=MARCH_3, time_class="rapid")
        fresh = await chesscom.get_archive("magnuscarlsen", 2024, 3, etag=empty.etag)
        assert isinstance(fresh, Fetched)
        assert [g.event_id for g in fresh.data.games] == [game["uuid"]]
        assert fresh.data.games[0].url.startswith("https://www.chess.com/game/live/")
    statuses = [r.status for r in simulator.requests]
    assert statuses == [200, 200, 304, 200]
    assert all(r.user_agent == USER_AGENT for r in simulator.requests)


async def test_concurrency_cap_and_timeout_over_http(served: tuple[ChessComSimulator, str]) -> None:
    simulator, base = served
    simulator.add_player("hikaru")
    # Three requests in flight are held until all ten have arrived: the cap is met by
    # the burst itself, however slowly a loaded machine opens the connections.
    simulator.hold = threading.Event()
    async with ChessComClient(base, user_agent=USER_AGENT, timeout=60) as chesscom:
        burst = asyncio.gather(
            *(chesscom.get_profile("hikaru") for _ in range(10)), return_exceptions=True
        )
        await until(lambda: len(simulator.requests) == 10, "all ten requests arrive")
        simulator.hold.set()
        results = await burst
    assert sum(isinstance(r, RateLimited) and r.retry_after == 1.0 for r in results) == 7
    assert sum(isinstance(r, Fetched) for r in results) == 3
    assert simulator.peak_concurrency > 3

    async with ChessComClient(base, user_agent=USER_AGENT, timeout=0.5) as chesscom:
        simulator.timeout("hikaru", 2.0, times=1)
        with pytest.raises(ChessComUnavailable):
            await chesscom.get_profile("hikaru")


async def until(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)
