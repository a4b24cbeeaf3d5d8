"""Async engine and sessions. One session per request; the dependency commits or rolls back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; commit when the handler succeeds, roll back otherwise."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the answer is sent. FastAPI's default runs the code
# after `yield` once the response has gone, so a client could be told 201 for a
# transaction that then fails, or not find its row on its very next request.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
