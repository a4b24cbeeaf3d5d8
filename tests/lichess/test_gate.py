"""The one Lichess turn (SPEC §10: one request at a time across every process) when
Lichess is slower than our timeout: the request we gave up on may still be served, so
every process pauses as after a 429, and Lichess never sees two at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.lichess.client import LichessClient
from app.lichess.errors import LichessTimedOut
from app.lichess.gate import LichessGate, LichessPaused
from tests.fakes.lichess import LichessSimulator
from tests.fakes.server import run_asgi_in_thread

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_a_timed_out_request_pauses_every_turn_like_a_429(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    lichess = LichessSimulator(latency_seconds=0.8)
    lichess.add_user("DrNykterstein")
    # The pause of a 429 (a minute in production) scaled down.
    gate = LichessGate(session_factory, requests_per_second=100, pause_seconds=1.5)
    # A real socket: a request we give up on goes on being served in the server's thread.
    with run_asgi_in_thread(lichess) as base:
        client = LichessClient(base, user_agent="tests", timeout=0.5)
        try:
            started = time.monotonic()
            with pytest.raises(LichessTimedOut):
                async with gate.turn():
                    await client.get_statuses(["drnykterstein"])
            with pytest.raises(LichessPaused):  # refused at once, no request sent
                async with gate.turn():
                    raise AssertionError("a turn during the pause")
            while True:
                try:
                    async with gate.turn():
                        waited = time.monotonic() - started
                        lichess.latency_seconds = 0.0
                        [status] = await client.get_statuses(["drnykterstein"])
                    break
                except LichessPaused as paused:
                    await asyncio.sleep(paused.seconds)
        finally:
            await client.aclose()
    assert status.id == "drnykterstein"
    # The next request began after the pause (the first was served for 0.8 s), not
    # 0.01 s after it (the spacing of 100 a second): Lichess never had two at once.
    assert waited >= 1.5
    assert lichess.peak_in_flight == 1 and lichess.overlaps == 0
    assert len(lichess.requests) == 2
