"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.chesscom.client import ChessComClient
from app.config import Settings
from app.subscriptions.tokens import TokenSigner


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


async def get_read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection in autocommit mode, for routes that read with one statement.

    A session wraps even one SELECT in BEGIN … COMMIT: three round trips where one
    does. One statement sees one consistent snapshot without a transaction.
    """
    engine: AsyncEngine = request.app.state.read_engine
    async with engine.connect() as conn:
        yield conn


ReadConnectionDep = Annotated[AsyncConnection, Depends(get_read_connection)]


# These are `async def` on purpose: FastAPI runs a plain `def` dependency in its thread
# pool, a thread hop per request for an attribute read.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _chesscom(request: Request) -> ChessComClient:
    client: ChessComClient = request.app.state.chesscom
    return client


async def _signer(request: Request) -> TokenSigner:
    signer: TokenSigner = request.app.state.signer
    return signer


SettingsDep = Annotated[Settings, Depends(_settings)]
ChessComDep = Annotated[ChessComClient, Depends(_chesscom)]
SignerDep = Annotated[TokenSigner, Depends(_signer)]

__all__ = ["ChessComDep", "ReadConnectionDep", "SessionDep", "SettingsDep", "SignerDep"]
