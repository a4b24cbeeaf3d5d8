"""Shared fixtures: a real PostgreSQL, the Chess.com simulator, the app over ASGITransport."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.chesscom.client import ChessComClient
from app.config import Settings
from app.db import create_engine, create_session_factory
from app.lichess.client import LichessClient
from app.main import create_app
from tests import db
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator
from tests.fakes.webhooks import offline_resolver

# No timing asserts in tests: hypothesis' default 200 ms per example is one, and on a
# loaded two-core machine a pure test missed it (311 ms once, 11 ms when re-run).
hypothesis_settings.register_profile("suite", deadline=None)
hypothesis_settings.load_profile("suite")

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
SIM_BASE = "http://chesscom.test/pub"
LICHESS_BASE = "http://lichess.test"

# Settings must come from the fixtures only, never from a developer's shell.
for _var in list(os.environ):
    if _var.startswith(
        ("SMTP_", "RATE_LIMIT_", "POLL_", "CHESSCOM_", "LICHESS_", "STREAMERS_")
    ) or _var in {
        "ADMIN_TOKEN",
        "SECRET_KEY",
        "APP_ENV",
        "REQUIRE_EMAIL_CONFIRMATION",
    }:
        del os.environ[_var]


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist the controller starts the cluster once, before its workers exist:
    # they inherit the URL instead of racing each other through `localdb.sh start`.
    is_worker = hasattr(config, "workerinput")
    if not is_worker and config.getoption("numprocesses", default=None):
        os.environ["TEST_DATABASE_URL"] = db.server_url()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (stable order otherwise): with `--dist worksteal` the other
    process steals the quick ones meanwhile, instead of a minute-long test starting
    last and running alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    return db.server_url()


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A database migrated to head once per test session (per xdist worker: the pid
    names it, so parallel test processes never share tables)."""
    name = f"chesshelper_test_{os.getpid()}"
    async with db.scratch_database(pg_server_url, name, migrate=True) as url:
        yield url


@pytest.fixture
async def scratch_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database of this test's own (not migrated); dropped afterwards."""
    async with db.scratch_database(pg_server_url, f"chesshelper_scratch_{os.getpid()}") as url:
        yield url


@pytest.fixture
async def clean_db(database_url: str) -> AsyncIterator[str]:
    """Every test that touches the database starts from empty tables."""
    await db.truncate_all(database_url)
    yield database_url


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": "test-secret-key-" + "x" * 32,
        "admin_token": ADMIN_TOKEN,
        "chesscom_api_base": SIM_BASE,
        "lichess_api_base": LICHESS_BASE,
        "contact_email": "ci@example.com",
        "rate_limit_enabled": False,
        "public_base_url": "http://testserver",
        "db_pool_size": 5,
        "db_max_overflow": 5,
        # Lichess gets one request at a time, LICHESS_REQUESTS_PER_SECOND apart (1 s by
        # default): a worker pass takes a turn even with no Lichess player tracked, so at
        # the default every pass after a test's first waited most of a second. No test
        # is about that pace (the gate's order, not its spacing, is checked).
        "lichess_requests_per_second": 100,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def simulator() -> ChessComSimulator:
    return ChessComSimulator()


@pytest.fixture
def chesscom_transport(simulator: ChessComSimulator) -> httpx.AsyncBaseTransport:
    """Requests to Chess.com go in-process into the simulator (the app's and the worker's)."""
    return simulator.transport()


@pytest.fixture
def lichess() -> LichessSimulator:
    return LichessSimulator()


@pytest.fixture
def lichess_transport(lichess: LichessSimulator) -> httpx.AsyncBaseTransport:
    """Requests to Lichess go in-process into its simulator (the app's and the worker's)."""
    return lichess.transport()


def chesscom_client(
    settings: Settings, transport: httpx.AsyncBaseTransport, *, timeout: float = 2.0
) -> ChessComClient:
    """The client a worker built from `settings` uses, talking through `transport`."""
    return ChessComClient(
        settings.api_base, user_agent=settings.user_agent, timeout=timeout, transport=transport
    )


def lichess_client(
    settings: Settings, transport: httpx.AsyncBaseTransport, *, timeout: float = 2.0
) -> LichessClient:
    """The Lichess client a worker built from `settings` uses, talking through `transport`."""
    return LichessClient(
        settings.lichess_base,
        user_agent=settings.user_agent,
        token=settings.lichess_token,
        timeout=timeout,
        transport=transport,
    )


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a module or test to change the app's settings."""
    return {}


@pytest.fixture
def settings(clean_db: str, tmp_path: Path, settings_overrides: dict[str, object]) -> Settings:
    return make_settings(clean_db, tmp_path / "data", **settings_overrides)


@pytest.fixture
async def app(
    settings: Settings,
    chesscom_transport: httpx.AsyncBaseTransport,
    lichess_transport: httpx.AsyncBaseTransport,
) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings, chesscom_transport=chesscom_transport, lichess_transport=lichess_transport
    )
    application.state.webhook_resolver = offline_resolver  # no DNS query leaves a test
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings, pool_size=2, max_overflow=2)
    yield eng
    await eng.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
def hikaru(simulator: ChessComSimulator) -> Iterator[dict[str, object]]:
    yield simulator.add_player(
        "Hikaru", name="Hikaru Nakamura", title="GM", player_id=15448422, followers=1_200_000
    )
