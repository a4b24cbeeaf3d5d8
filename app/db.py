"""Async engine and session factory, shared by API and worker (no web imports here).

The request dependency that commits or rolls back lives in `app.deps`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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


def create_engine(settings: Settings, **overrides: object) -> AsyncEngine:
    options: dict[str, object] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
    }
    options.update(overrides)
    return create_async_engine(database_url(settings), **options)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
