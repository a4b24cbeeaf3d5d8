"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.channels.registry import AnyChannel
from app.chesscom.client import ChessComClient
from app.config import Settings
from app.db import ReadPool
from app.players.platforms import Platforms
from app.tokens import TokenSigner
from app.webhooks.guard import IPAddress, Resolver, system_resolver


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


async def _read_pool(request: Request) -> ReadPool:
    """The asyncpg pool for one-statement reads (app.db.ReadPool)."""
    pool: ReadPool = request.app.state.read_pool
    return pool


ReadPoolDep = Annotated[ReadPool, Depends(_read_pool)]


# These are `async def` on purpose: FastAPI runs a plain `def` dependency in its thread
# pool, a thread hop per request for an attribute read.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _chesscom(request: Request) -> ChessComClient:
    client: ChessComClient = request.app.state.chesscom
    return client


async def _platforms(request: Request) -> Platforms:
    platforms: Platforms = request.app.state.platforms
    return platforms


async def _signer(request: Request) -> TokenSigner:
    signer: TokenSigner = request.app.state.signer
    return signer


def webhook_resolver(request: Request) -> Resolver:
    """The DNS resolver webhook URLs are checked with (tests install an offline one)."""
    return _resolver_of(request.app)


def _resolver_of(app: FastAPI) -> Resolver:
    resolver: Resolver = getattr(app.state, "webhook_resolver", system_resolver)
    return resolver


def app_resolver(app: FastAPI) -> Resolver:
    """A resolver that asks the app's current one at each call (tests set theirs once the
    app is built, after the channels that use it)."""

    async def resolve(host: str, port: int) -> Sequence[IPAddress]:
        return await _resolver_of(app)(host, port)

    return resolve


async def _channels(request: Request) -> Mapping[str, AnyChannel]:
    channels: Mapping[str, AnyChannel] = request.app.state.channels
    return channels


async def _webhook_resolver(request: Request) -> Resolver:
    return webhook_resolver(request)


SettingsDep = Annotated[Settings, Depends(_settings)]
ChannelsDep = Annotated[Mapping[str, AnyChannel], Depends(_channels)]
ChessComDep = Annotated[ChessComClient, Depends(_chesscom)]
PlatformsDep = Annotated[Platforms, Depends(_platforms)]
SignerDep = Annotated[TokenSigner, Depends(_signer)]
WebhookResolverDep = Annotated[Resolver, Depends(_webhook_resolver)]

__all__ = [
    "ChannelsDep",
    "ChessComDep",
    "PlatformsDep",
    "ReadPoolDep",
    "SessionDep",
    "SettingsDep",
    "SignerDep",
    "WebhookResolverDep",
    "webhook_resolver",
]
