"""Async engine and session factory, shared by API and worker (no web imports here).

The request dependency that commits or rolls back lives in `app.api.deps`."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_

from app.config import Settings


class DatabaseNotConfigured(RuntimeError):
    """No DATABASE_URL / POSTGRES_* and no local cluster URL was given."""


def database_url(settings: Settings) -> str:
    url = settings.effective_database_url
    if url is None:
        raise DatabaseNotConfigured(
            "DATABASE_URL is not set: run through `make run`, or set DATABASE_URL / POSTGRES_*"
        )
    return url


class FairQueuePool(AsyncAdaptedQueuePool):
    """The async queue pool, with connections handed out first come, first served.

    The stock pool's queue gives a returned connection to whichever task asks next,
    before the tasks already waiting get to run: under load (64 requests, 10
    connections) some requests waited seconds while others never waited at all
    (p50 6 ms, p99 3.5 s). A FIFO semaphore sized to the pool lets tasks in in the
    order they came, so the queue never has a waiter to skip.
    """

    _gate: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        if self._gate is None:
            capacity = self.size() + max(self._max_overflow, 0)
            self._gate = asyncio.Semaphore(capacity)
        return self._gate

    async def _enter(self) -> None:
        gate = self._semaphore()
        if not gate.locked():  # a free connection and nobody before us: no timer needed
            await gate.acquire()
            return
        try:
            await asyncio.wait_for(gate.acquire(), self._timeout)
        except TimeoutError:
            raise PoolTimeout(
                f"QueuePool limit of size {self.size()} overflow {self._max_overflow} "
                f"reached, connection timed out, timeout {self._timeout:.2f}"
            ) from None

    def _do_get(self) -> ConnectionPoolEntry:
        if self._max_overflow < 0:  # unbounded: nothing to queue for
            return super()._do_get()
        await_(self._enter())
        try:
            return super()._do_get()
        except BaseException:
            self._semaphore().release()
            raise

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            if self._max_overflow >= 0:
                self._semaphore().release()


# SQLAlchemy names a pool's logger after its class: keep this one as quiet as the stock
# pool's (it would otherwise announce every dispose at INFO under the app's logger).
logging.getLogger(f"{__name__}.{FairQueuePool.__name__}").setLevel(logging.WARNING)


def create_engine(settings: Settings, **overrides: object) -> AsyncEngine:
    options: dict[str, object] = {
        "poolclass": FairQueuePool,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
    }
    options.update(overrides)
    return create_async_engine(database_url(settings), **options)


# What asyncpg raises when the connection, not the query, failed (a restart, a dropped
# socket, a protocol left mid-exchange by a terminated backend, a refused connect).
DISCONNECTED = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
)


class ReadPool:
    """A lean asyncpg pool for the API's hottest read (`GET /players/{username}`, issue 11).

    That read is one autocommit SELECT. Through SQLAlchemy's pool each checkout cost
    about 70 µs of CPU (greenlet switches, the connection wrapper and its events, the
    AUTOCOMMIT characteristic set and reset), more than the query itself (measured side
    by side, bench/RESULTS.md); asyncpg's own pool hands out the driver connection.

    Its connections only ever run single read-only statements outside a transaction, so
    there is no session state to reset: asyncpg's default reset (a round trip on every
    release) is left out. They are opened on demand, none at start-up (the API starts
    without its database, as /readyz expects). A request waits for a free connection as
    long as it takes, in the order it came: asyncpg's queue lets a newly arrived request
    take a returned connection before the waiter it woke runs (the woken one queues again
    at the back), which on a quiet machine gave p50 3.5 ms but p99 196 ms at 64
    connections. A FIFO semaphore sized to the pool admits requests in arrival order, as
    `FairQueuePool` does for SQLAlchemy's pool, so the queue never has a waiter to skip.
    """

    def __init__(self, pool: asyncpg.Pool, size: int) -> None:
        self._pool = pool
        self._gate = asyncio.Semaphore(size)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        """One statement on a pooled connection.

        ConnectionError when the database cannot be reached or the connection was lost
        (that connection is dropped, the next request gets a fresh one): the API
        answers it with 503 and Retry-After.
        """
        try:
            async with self._gate, self._pool.acquire() as conn:
                try:
                    row: asyncpg.Record | None = await conn.fetchrow(query, *args)
                except DISCONNECTED:
                    conn.terminate()
                    raise
                return row
        except DISCONNECTED as exc:
            raise ConnectionError("the database connection was lost") from exc

    async def close(self) -> None:
        await self._pool.close()


async def _decode_json(conn: asyncpg.Connection) -> None:
    # As SQLAlchemy's dialect does on its connections: JSON columns come back decoded.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=json.dumps, decoder=json.loads)


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """Single statements in autocommit leave no session state behind (see ReadPool)."""


# Options of SQLAlchemy's asyncpg adapter that a URL may carry, not of asyncpg.connect.
_ADAPTER_OPTIONS = frozenset({"prepared_statement_cache_size", "prepared_statement_name_func"})


def asyncpg_connect_args(url: str | URL) -> dict[str, Any]:
    """asyncpg.connect() / create_pool() keywords for a `postgresql+asyncpg://` URL.

    Derived here only, by SQLAlchemy's asyncpg dialect itself (host or socket, port,
    user, password, database, ssl and the other query options), so that every
    connection of ours (the engine's, the API's read pool, the worker's LISTEN) reaches
    the same server the same way.
    """
    parsed = make_url(url)
    _, options = parsed.get_dialect()().create_connect_args(parsed)
    return {key: value for key, value in options.items() if key not in _ADAPTER_OPTIONS}


async def create_read_pool(engine: AsyncEngine, size: int) -> ReadPool:
    """A `ReadPool` of up to `size` connections to the engine's database, same parameters."""
    pool = await asyncpg.create_pool(
        min_size=0,
        max_size=size,
        init=_decode_json,
        reset=_nothing_to_reset,
        **asyncpg_connect_args(engine.url),
    )
    return ReadPool(pool, size)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
