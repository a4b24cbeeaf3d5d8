"""A tracked player whose sessions the real worker detected from the Chess.com simulator."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.conftest import chesscom_client, lichess_client
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator
from worker.runner import Worker

NOW = int(time.time())
HOUR = 3600


@dataclass
class Site:
    client: httpx.AsyncClient
    sim: ChessComSimulator
    lichess: LichessSimulator
    worker: Worker
    engine: AsyncEngine
    tracked: set[str] = field(default_factory=set)

    async def poll(self) -> None:
        """Make every player due and run one worker pass (poll + deliver)."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE players SET next_poll_at = now()"))
        await self.worker.run_once()

    async def track(self, username: str) -> None:
        r = await self.client.post("/api/v1/players", json={"username": username})
        assert r.status_code in (200, 201), r.text
        await self.poll()  # the baseline: games before it never count
        self.tracked.add(username)

    async def sql(self, statement: str, **params: object) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(statement), params)

    async def form_token(self, path: str = "/") -> str:
        """Open a page with a form: its CSRF cookie lands in the client's jar."""
        page = await self.client.get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        return found[1]


@pytest.fixture
async def site(
    client: httpx.AsyncClient,
    settings: Settings,
    simulator: ChessComSimulator,
    chesscom_transport: httpx.AsyncBaseTransport,
    lichess: LichessSimulator,
    lichess_transport: httpx.AsyncBaseTransport,
    engine: AsyncEngine,
) -> AsyncIterator[Site]:
    simulator.add_player(
        "Hikaru", name="Hikaru Nakamura", title="GM", player_id=15448422, followers=1_200_000
    )
    simulator.add_player("Firouzja2003", name="Alireza Firouzja", title="GM", followers=300_000)
    lichess.add_user("DrNykterstein", title="GM")
    worker = Worker(
        settings,
        client=chesscom_client(settings, chesscom_transport, timeout=5),
        lichess=lichess_client(settings, lichess_transport, timeout=5),
    )
    try:
        yield Site(client, simulator, lichess, worker, engine)
    finally:
        await worker.aclose()
