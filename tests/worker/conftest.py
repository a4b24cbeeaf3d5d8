"""Worker fixtures: the real PostgreSQL, an aiosmtpd server, the Chess.com simulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import EmailSubscription, NotificationLog, Player
from tests.conftest import chesscom_client, lichess_client, make_settings
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.server import run_asgi_in_thread
from tests.fakes.smtp import SMTPServerFake, running_smtp_server
from worker.runner import Worker

NOW = int(time.time())
HOUR = 3600
DAY = 86400


@pytest.fixture
def sim_root(simulator: ChessComSimulator) -> Iterator[str]:
    """The simulator on a real socket, so a child process (`python -m worker`) can reach it."""
    with run_asgi_in_thread(simulator) as root:
        yield root


@pytest.fixture
def smtp_server() -> Iterator[SMTPServerFake]:
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def worker_settings(clean_db: str, tmp_path: Path, smtp_server: SMTPServerFake) -> Settings:
    return make_settings(
        clean_db,
        tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        email_from="Chess.com Helper <alerts@helper.test>",
        poll_interval_seconds=300,
        delivery_retry_base_seconds=0.05,
        delivery_lease_seconds=5,
        # The request budget has its own tests; here it must not pace the worker.
        chesscom_requests_per_second=1000,
    )


WorkerFactory = Callable[..., Worker]


@pytest.fixture
async def make_worker(
    worker_settings: Settings,
    chesscom_transport: httpx.AsyncBaseTransport,
    lichess_transport: httpx.AsyncBaseTransport,
) -> AsyncIterator[WorkerFactory]:
    made: list[Worker] = []

    def factory(settings: Settings | None = None) -> Worker:
        s = settings or worker_settings
        w = Worker(
            s,
            client=chesscom_client(s, chesscom_transport),
            lichess=lichess_client(s, lichess_transport),
        )
        made.append(w)
        return w

    yield factory
    for w in made:
        await w.aclose()


class World:
    """Test helpers that read like the spec: players, subscribers, what was sent."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        simulator: ChessComSimulator,
        smtp: SMTPServerFake,
        make_worker: WorkerFactory,
    ) -> None:
        self.factory = factory
        self.sim = simulator
        self.smtp = smtp
        self.make_worker = make_worker

    async def followed(self, username: str, *emails: str) -> None:
        """Track `username`, subscribe `emails` (confirmed), and take the baseline poll."""
        await self.track(username)
        for email in emails:
            await self.subscribe(email, username)
        await self.make_worker().run_once()

    async def track(self, username: str, **profile: object) -> int:
        data = self.sim.add_player(username, **profile)
        async with self.factory() as s, s.begin():
            s.add(Player(player_id=data["player_id"], username=username.lower(), url=data["url"]))
        return int(data["player_id"])

    async def subscribe(
        self, email: str, username: str, *, confirmed: bool = True, active: bool = True
    ) -> int:
        async with self.factory() as s, s.begin():
            pid = await s.scalar(select(Player.player_id).where(Player.username == username))
            assert pid is not None
            sub = EmailSubscription(
                email=email,
                player_id=pid,
                is_active=active,
                confirmed_at=datetime.now(UTC) if confirmed else None,
            )
            s.add(sub)
            await s.flush()
            return sub.id

    async def make_due(self) -> None:
        async with self.factory() as s, s.begin():
            await s.execute(text("UPDATE players SET next_poll_at = now()"))

    async def player(self, username: str) -> Player:
        async with self.factory() as s:
            p = await s.scalar(select(Player).where(Player.username == username))
            assert p is not None
            return p

    async def logs(self) -> list[NotificationLog]:
        async with self.factory() as s:
            return list(
                (await s.scalars(select(NotificationLog).order_by(NotificationLog.id))).all()
            )

    def sent_to(self, email: str) -> list[str]:
        return [m.subject for m in self.smtp.messages if email in m.rcpt_tos]


@pytest.fixture
def world(
    session_factory: async_sessionmaker[AsyncSession],
    simulator: ChessComSimulator,
    smtp_server: SMTPServerFake,
    worker_settings: Settings,
    make_worker: WorkerFactory,
) -> World:
    return World(session_factory, simulator, smtp_server, make_worker)
