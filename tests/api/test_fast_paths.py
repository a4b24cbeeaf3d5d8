"""The fast paths of issue 11: what was taken out must not change what clients see.

- `GET /players/{username}` answered by its plain Starlette route gives the same JSON,
  errors and headers as the documented FastAPI operation;
- no pool pre-ping: a connection killed under the API costs one 503, then it recovers;
- the pool hands connections out first come, first served;
- the access log: one cheap line per request, in the log format, tokens redacted.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.db import FairQueuePool
from app.logging import configure_logging
from app.main import create_app
from app.ops.access import LOGGER_NAME, log_access, request_line
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


@pytest.mark.parametrize("path", ["/api/v1/players/hikaru", "/api/v1/players"])
async def test_a_connection_killed_under_the_api_costs_one_503(
    app: FastAPI, client: httpx.AsyncClient, hikaru: dict[str, object], path: str
) -> None:
    assert (await client.post("/api/v1/players", json={"username": "hikaru"})).status_code == 201
    assert (await client.get(path)).status_code == 200
    assert await _kill_api_connections(app.state.settings.database_url) >= 1
    # The pooled connection is dead: that request is told to retry…
    lost = await client.get(path)
    assert lost.status_code == 503 and lost.headers["retry-after"] == "5"
    # …and the pool has forgotten it: the next requests are served.
    assert [(await client.get(path)).status_code for _ in range(3)] == [200] * 3


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
