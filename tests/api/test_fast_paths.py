"""The fast paths of issue 11: what was taken out must not change what clients see.

- `GET /players/{username}`, answered ahead of FastAPI's middleware stack
  (app/api/fast_read.py), gives the same JSON, errors and headers as the documented
  FastAPI operation, and is counted and logged like any request;
- no pool pre-ping: a connection killed under the API costs one 503, then it recovers;
- both pools (SQLAlchemy's, and the asyncpg one of that read) hand connections out
  first come, first served;
- the access log: one cheap line per request, in the log format, tokens redacted.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import socket
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import ASGIApp, Receive, Scope, Send

from app.access_log import LOGGER_NAME, log_access, request_line
from app.config import Settings
from app.db import FairQueuePool, create_read_pool
from app.logging import configure_logging
from app.main import create_app
from app.players import service as players_service
from tests import db


async def test_fast_read_answers_like_the_documented_operation(
    client: httpx.AsyncClient, hikaru: dict[str, object]
) -> None:
    created = await client.post("/api/v1/players", json={"username": "hikaru"})
    assert created.status_code == 201
    r = await client.get("/api/v1/players/HiKaRu")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == created.json()
    assert r.json()["subscriber_count"] == 0
    assert isinstance(r.json()["streaming_platforms"], list)
    missing = await client.get("/api/v1/players/nobody")
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "Player 'nobody' is not tracked"},
    )
    # Not a username: FastAPI's route and its documented 422.
    bad = await client.get("/api/v1/players/a%20b")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "username"]
    head = await client.head("/api/v1/players/hikaru")
    assert head.status_code == 405 and head.headers["allow"] == "DELETE, GET"


async def test_both_doors_of_the_player_read_are_one_implementation(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read ahead of the stack and the documented route answer with the same call
    (issue 18 item 6): change it, and both answers change."""
    asked: list[str] = []

    async def the_one(pool: object, username: str) -> bytes:
        asked.append(username)
        return b'{"answered_by": "player_json"}'

    monkeypatch.setattr(players_service, "player_json", the_one)

    stack = FastAPI.build_middleware_stack(app)  # FastAPI's own, without the read in front

    async def route_only(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as the app's __call__ sets it
        await stack(scope, receive, send)

    fast = await client.get("/api/v1/players/hikaru")
    transport = httpx.ASGITransport(app=route_only)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as direct:
        routed = await direct.get("/api/v1/players/Hikaru")
    assert fast.json() == routed.json() == {"answered_by": "player_json"}
    assert asked == ["hikaru", "Hikaru"]


async def test_fast_read_is_counted_under_its_route_template(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/api/v1/players/zzfastprobe")
    text = (await client.get("/api/v1/metrics")).text
    assert (
        'chesscom_helper_http_requests_total{method="GET",route="/api/v1/players/{username}",'
        'status="404"}' in text
    )
    assert "zzfastprobe" not in text


class _SeenByTheStack:
    """A user middleware: records the paths that went through FastAPI's stack."""

    paths: list[str] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


async def test_player_reads_are_answered_ahead_of_the_stack_and_logged(
    settings: Settings,
    chesscom_transport: httpx.AsyncBaseTransport,
    hikaru: dict[str, object],
    access_lines: io.StringIO,
) -> None:
    app = create_app(settings, chesscom_transport=chesscom_transport)
    app.add_middleware(_SeenByTheStack)
    _SeenByTheStack.paths = []
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        logging.getLogger(LOGGER_NAME).handlers[0].setStream(access_lines)  # type: ignore[attr-defined]
        assert (
            await client.post("/api/v1/players", json={"username": "hikaru"})
        ).status_code == 201
        found = await client.get("/api/v1/players/hikaru")
        missing = await client.get("/api/v1/players/nobody")
        listed = await client.get("/api/v1/players")
    assert found.status_code == 200 and found.json()["username"] == "hikaru"
    assert found.headers["content-length"] == str(len(found.content))
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "Player 'nobody' is not tracked"},
    )
    assert missing.headers["content-type"] == "application/json"
    assert listed.status_code == 200
    # The two reads never entered FastAPI's stack; the other requests did.
    assert _SeenByTheStack.paths == ["/api/v1/players", "/api/v1/players"]
    lines = access_lines.getvalue().splitlines()
    assert len(lines) == 4
    assert '"GET /api/v1/players/hikaru HTTP/1.1" 200' in lines[1]
    assert '"GET /api/v1/players/nobody HTTP/1.1" 404' in lines[2]
    assert all("203.0.113.7" in line for line in lines)


async def _kill_api_connections(database_url: str) -> int:
    conn = await asyncpg.connect(db.asyncpg_dsn(database_url))
    try:
        killed: int = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return killed
    finally:
        await conn.close()


async def test_a_connection_killed_under_the_api_costs_one_503(
    app: FastAPI, client: httpx.AsyncClient, hikaru: dict[str, object]
) -> None:
    path = "/api/v1/players"  # through SQLAlchemy's pool
    assert (await client.post("/api/v1/players", json={"username": "hikaru"})).status_code == 201
    assert (await client.get(path)).status_code == 200
    assert await _kill_api_connections(app.state.settings.database_url) >= 1
    # The pooled connection is dead: that request is told to retry…
    lost = await client.get(path)
    assert lost.status_code == 503 and lost.headers["retry-after"] == "5"
    # …and the pool has forgotten it: the next requests are served.
    assert [(await client.get(path)).status_code for _ in range(3)] == [200] * 3


async def test_player_reads_survive_killed_connections(
    app: FastAPI, client: httpx.AsyncClient, hikaru: dict[str, object]
) -> None:
    """asyncpg's pool sees a connection closed by the server and opens a fresh one, so
    the next read is usually served at once; at worst it is one 503 to retry."""
    path = "/api/v1/players/hikaru"
    assert (await client.post("/api/v1/players", json={"username": "hikaru"})).status_code == 201
    assert (await client.get(path)).status_code == 200
    assert await _kill_api_connections(app.state.settings.database_url) >= 1
    lost = await client.get(path)
    assert lost.status_code == 200 or (lost.status_code, lost.headers["retry-after"]) == (503, "5")
    assert [(await client.get(path)).status_code for _ in range(3)] == [200] * 3


async def test_a_read_whose_connection_dies_mid_query_costs_that_read_only(
    database_url: str,
) -> None:
    engine = create_async_engine(database_url)
    pool = await create_read_pool(engine, 1)
    try:
        slow = asyncio.create_task(pool.fetchrow("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        assert await _kill_api_connections(database_url) >= 1
        with pytest.raises(ConnectionError):  # the API answers it with 503 + Retry-After
            await slow
        row = await pool.fetchrow("SELECT 1 AS n")  # a fresh connection
        assert row is not None and row["n"] == 1
    finally:
        await pool.close()
        await engine.dispose()


async def test_player_reads_without_a_database_answer_503(
    settings: Settings, chesscom_transport: httpx.AsyncBaseTransport
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    nowhere = settings.model_copy(
        update={"database_url": f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none"}
    )
    app = create_app(nowhere, chesscom_transport=chesscom_transport)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),  # starts without its database
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        r = await client.get("/api/v1/players/hikaru")
    assert (r.status_code, r.headers["retry-after"]) == (503, "5")
    assert r.json() == {"detail": "The database is unavailable; try again shortly"}


@pytest.mark.parametrize("repeat", range(3))
async def test_pool_serves_waiting_tasks_first_come_first_served(
    database_url: str, repeat: int
) -> None:
    """A task that gives its connection back and asks again queues behind the waiters.

    The stock pool handed the returned connection straight back to it (b and c would
    wait a whole extra turn: under load, some requests waited seconds).
    """
    engine = create_async_engine(
        database_url, poolclass=FairQueuePool, pool_size=1, max_overflow=0, pool_timeout=10
    )
    order: list[str] = []

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(*_: object) -> None:
        task = asyncio.current_task()
        order.append(task.get_name() if task else "?")

    async def waiter() -> None:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    try:
        first = await engine.connect()
        await first.exec_driver_sql("SELECT 1")
        waiters = [asyncio.create_task(waiter(), name=n) for n in ("b", "c")]
        await asyncio.sleep(0.05)  # both are queued now
        await first.close()
        async with engine.connect() as again:  # at once, no await in between
            await again.exec_driver_sql("SELECT 1")
        await asyncio.gather(*waiters)
    finally:
        await engine.dispose()
    me = order[0]
    assert order == [me, "b", "c", me]


@pytest.mark.parametrize("repeat", range(3))
async def test_read_pool_serves_waiting_tasks_first_come_first_served(
    database_url: str, repeat: int
) -> None:
    """As above, for the asyncpg pool of `GET /players/{u}` (asyncpg's release takes an
    extra turn of the loop, so the waiters are served before the releasing task)."""
    engine = create_async_engine(database_url)
    pool = await create_read_pool(engine, 1)
    order: list[str] = []

    async def read(name: str, sleep: float = 0) -> None:
        await pool.fetchrow("SELECT pg_sleep($1)", sleep)
        order.append(name)

    try:
        first = asyncio.create_task(read("me", 0.2))
        await asyncio.sleep(0.05)
        waiters = [asyncio.create_task(read(n)) for n in ("b", "c")]
        await first  # given back, and at once (no await in between) asked again:
        await read("me")
        await asyncio.gather(*waiters)
    finally:
        await pool.close()
        await engine.dispose()
    assert order == ["me", "b", "c", "me"]


async def test_read_pool_newcomers_queue_behind_the_waiters(database_url: str) -> None:
    """Requests arriving while others wait are served after them, not in between.

    asyncpg's own queue lets a newcomer take a returned connection before the waiter it
    woke runs; under a steady stream of arrivals one early read finished ~375 places
    late (the p99 of 196 ms on a quiet machine, bench/RESULTS.md §4). Through the
    pool's FIFO gate, with one connection, reads finish exactly in arrival order.
    """
    engine = create_async_engine(database_url)
    pool = await create_read_pool(engine, 1)
    finished: list[int] = []

    async def read(i: int) -> None:
        await pool.fetchrow("SELECT $1::int", i)
        finished.append(i)

    try:
        await pool.fetchrow("SELECT 1")  # the connection is open before the stream starts
        tasks = []
        for i in range(400):
            tasks.append(asyncio.create_task(read(i)))
            await asyncio.sleep(0)  # arrivals interleave with the releases
        await asyncio.gather(*tasks)
    finally:
        await pool.close()
        await engine.dispose()
    assert finished == list(range(400))


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    logger = logging.getLogger(LOGGER_NAME)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    buffer = io.StringIO()
    yield buffer
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
    root.handlers[:], _ = saved_root
    root.setLevel(saved_root[1])


@pytest.mark.parametrize("as_json", [False, True])
def test_access_log_is_one_line_in_the_log_format_without_tokens(
    access_lines: io.StringIO, as_json: bool
) -> None:
    configure_logging(Settings(database_url="postgresql+asyncpg://u@h/db", log_json=as_json))
    handler = logging.getLogger(LOGGER_NAME).handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(access_lines)
    line = request_line("POST", "/api/v1/unsubscribe", b"token=SECRET.abc&x=1", "1.1")
    log_access("203.0.113.7", line, 200, time.perf_counter())
    out = access_lines.getvalue()
    assert out.count("\n") == 1 and "SECRET" not in out
    expected = '"POST /api/v1/unsubscribe?token=[redacted]&x=1 HTTP/1.1" 200'
    if as_json:
        record = json.loads(out)
        assert expected in record["event"]
        assert record["logger"] == LOGGER_NAME and record["level"] == "info"
        assert record["timestamp"].endswith("Z") and record["duration_ms"] >= 0
    else:
        assert expected in out
        assert out[:4].isdigit() and "Z [info" in out[:40]


async def test_a_server_process_freezes_its_startup_objects(settings: Settings) -> None:
    """gc.freeze after start-up: full collections stop walking the app (0.5 s pauses)."""
    app = create_app(settings)
    app.state.freeze_gc = True  # what app.main:app sets in a server process
    thresholds = gc.get_threshold()
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000
            assert gc.get_threshold()[0] > thresholds[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    plain = create_app(settings)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0


async def test_the_subscriber_count_reads_the_deliverable_index(clean_db: str) -> None:
    """The count's condition matches the partial index's predicate, so it reads the
    player's deliverable rows only. Written `is_active IS true`, PostgreSQL could not use
    that index: every GET scanned all subscriptions (0.7 ms at 10,000 pending ones, and
    growing, against 0.06 ms), and the benchmark's POST bursts slowed the GETs after them.
    """
    conn = await asyncpg.connect(db.asyncpg_dsn(clean_db))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, username) VALUES (1, 'x');"
            "INSERT INTO email_subscriptions (email, player_id)"
            " SELECT 'p' || g || '@example.com', 1 FROM generate_series(1, 2000) g;"
            "ANALYZE players; ANALYZE email_subscriptions;"
            "SET enable_seqscan = off"  # what a larger table would choose anyway
        )
        plan = "\n".join(
            r[0] for r in await conn.fetch("EXPLAIN " + players_service._READ_PLAYER_SQL, "x")
        )
    finally:
        await conn.close()
    assert "ix_email_subscriptions_deliverable" in plan, plan
