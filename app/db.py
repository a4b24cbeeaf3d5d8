"""Async engine and session factory, shared by API and worker (no web imports here).

The request dependency that commits or rolls back lives in `app.deps`."""

from __future__ import annotations

import asyncio
import logging

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


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
