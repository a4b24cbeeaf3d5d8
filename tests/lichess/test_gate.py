"""The one Lichess turn (SPEC §10: one request at a time across every process) when
Lichess is slower than our timeout: the request we gave up on may still be served, so
the next one waits, and Lichess never sees two at once."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.lichess.client import LichessClient
from app.lichess.errors import LichessTimedOut
from app.lichess.gate import LichessGate
from tests.fakes.lichess import LichessSimulator
from tests.fakes.server import run_asgi_in_thread

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_a_timed_out_request_holds_the_next_turn_until_lichess_is_done(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    lichess = LichessSimulator(latency_seconds=0.8)
    lichess.add_user("DrNykterstein")
    gate = LichessGate(session_factory, requests_per_second=100)
    # A real socket: a request we give up on goes on being served in the server's thread.
    with run_asgi_in_thread(lichess) as base:
        client = LichessClient(base, user_agent="tests", timeout=0.5)
        try:
            started = time.monotonic()
            with pytest.raises(LichessTimedOut):
                async with gate.turn():
                    await client.get_statuses(["drnykterstein"])
            async with gate.turn():
                waited = time.monotonic() - started
                lichess.latency_seconds = 0.0
                [status] = await client.get_statuses(["drnykterstein"])
        finally:
            await client.aclose()
    assert status.id == "drnykterstein"
    # The second began once the first had been given a further timeout's length (it
    # was served for 0.8 s), not 0.01 s after it (the spacing of 100 a second).
    assert waited >= 1.0
    assert lichess.peak_in_flight == 1 and lichess.overlaps == 0
