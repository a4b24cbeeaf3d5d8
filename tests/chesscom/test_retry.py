"""with_retries: transient failures are retried with back-off, permanent ones are not."""

from __future__ import annotations

import pytest

from app.chesscom.client import ChessComClient, Fetched
from app.chesscom.errors import ChessComUnavailable, PlayerNotFound, RateLimited
from app.chesscom.retry import with_retries
from tests.chesscom.conftest import make_client
from tests.fakes.chesscom import ChessComSimulator


async def test_recovers_after_transient_500s(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("hikaru")
    simulator.fail("hikaru", status=500, times=2)
    result = await with_retries(lambda: client.get_profile("hikaru"), attempts=3, base=0.01)
    assert isinstance(result, Fetched) and result.data.username == "hikaru"
    assert [r.status for r in simulator.requests] == [500, 500, 200]


async def test_recovers_after_a_timeout(simulator: ChessComSimulator) -> None:
    simulator.add_player("hikaru")
    simulator.timeout("hikaru", 1.0, times=1)
    async with make_client(simulator, timeout=0.1) as chesscom:
        result = await with_retries(lambda: chesscom.get_profile("hikaru"), base=0.01)
    assert isinstance(result, Fetched)


async def test_gives_up_after_the_attempts(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    simulator.add_player("hikaru")
    simulator.fail("hikaru", status=503, times=None)
    with pytest.raises(ChessComUnavailable):
        await with_retries(lambda: client.get_profile("hikaru"), attempts=3, base=0.01)
    assert len(simulator.requests) == 3


async def test_permanent_errors_are_not_retried(
    simulator: ChessComSimulator, client: ChessComClient
) -> None:
    with pytest.raises(PlayerNotFound):
        await with_retries(lambda: client.get_profile("nobody"), base=0.01)
    simulator.add_player("hikaru")
    simulator.fail("hikaru", status=429, retry_after=2)
    with pytest.raises(RateLimited) as caught:
        await with_retries(lambda: client.get_profile("hikaru"), base=0.01)
    assert caught.value.retry_after == 2.0
    assert len(simulator.requests) == 2
