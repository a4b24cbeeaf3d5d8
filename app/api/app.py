"""The FastAPI application, served as `app.main:app`; long-lived clients built in the lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Depends, FastAPI
from starlette.types import ASGIApp

from app import __version__
from app.api.allow import install_allow_header
from app.api.deps import app_resolver
from app.api.errors import install_error_handlers
from app.api.fast_read import PlayerReads
from app.api.openapi import fit_to_deployment, operation_id
from app.api.ops.docs import install_docs
from app.api.ops.limits import BodySizeLimit
from app.api.ops.metrics import MetricsMiddleware
from app.api.ops.router import router as ops_router
from app.api.pages.players import router as player_pages_router
from app.api.pages.site import router as site_router
from app.api.pages.telegram import router as telegram_pages_router
from app.api.pages.webhook_manage import router as webhook_manage_pages_router
from app.api.pages.webhooks import router as webhook_pages_router
from app.api.player_feeds import PlayerFeeds
from app.api.ratelimit import RateLimiter, rate_limit
from app.api.routers.links import router as pages_router
from app.api.routers.me import router as me_router
from app.api.routers.notifications import router as notifications_router
from app.api.routers.players import router as players_router
from app.api.routers.push import router as push_router
from app.api.routers.push import scripts as push_scripts
from app.api.routers.push_manage import router as push_manage_router
from app.api.routers.subscriptions import router as subscriptions_router
from app.api.routers.webhook_manage import router as webhook_manage_router
from app.api.webhook_docs import install_webhook_docs
from app.channels.registry import build_channels
from app.chesscom.client import ChessComClient
from app.config import PROJECT_ROOT, Settings, load_settings
from app.db import create_engine, create_read_pool, create_session_factory
from app.lichess.client import LichessClient
from app.lichess.gate import LichessGate
from app.logging import configure_logging
from app.player_pages.feed import FeedBodies
from app.players.platforms import LichessProfiles, Platforms
from app.tokens import TokenSigner
from app.urls import API_PREFIX

log = logging.getLogger(__name__)


# A visitor tracking a Lichess player waits at most this long for the one-at-a-time
# turn shared with the worker's sweep (then 503): a sweep's request takes well under it.
LICHESS_API_WAIT_SECONDS = 10.0

DESCRIPTION = """
Track Chess.com players and get an email the moment one of them starts playing live chess.

* **Players**: start tracking a Chess.com player; profiles come from Chess.com's Published-Data API.
* **Subscriptions**: subscribe an address to a player (double opt-in), confirm, unsubscribe.
* **Admin** routes need `Authorization: Bearer <token>` (`ADMIN_TOKEN` or a CLI-made token).
"""


def migration_heads() -> set[str]:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    return set(ScriptDirectory.from_config(config).get_heads())


def freeze_startup_objects() -> None:
    """Keep the garbage collector off what was built at start-up (gc.freeze).

    The app, its routes, models, SQLAlchemy's and pydantic's caches are hundreds of
    thousands of objects that live as long as the process. Each full collection walked
    all of them: pauses of 0.4-0.6 s under load (logged with gc.callbacks), every request
    in flight waiting through them, the p99 of GET /players/{u}. Frozen, a full
    collection takes about a millisecond. Only server processes do it (tests build
    many apps in one process).
    """
    gc.collect()
    gc.freeze()
    # And collect the young generation less often: a request allocates hundreds of
    # objects, so the default (every 700 allocations) ran a collection per request or so
    # (about 9 % less CPU per GET /players/{u} with this, measured).
    gc.set_threshold(20_000, 50, 100)


class App(FastAPI):
    """FastAPI, with the hot read in front of its middleware stack and metrics around all.

    Every request passes the metrics and access log layer first, then `PlayerReads`,
    which answers `GET /players/{username}` itself (app/api/fast_read.py), then
    `PlayerFeeds`, which answers a player's badge and feed (app/api/player_feeds.py), and
    hands anything else to FastAPI's own stack (server errors, the user middleware,
    exception handlers, the router).
    """

    def build_middleware_stack(self) -> ASGIApp:
        return MetricsMiddleware(PlayerReads(PlayerFeeds(super().build_middleware_stack())))

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:  # built once, then served as it is
            self.openapi_schema = fit_to_deployment(super().openapi(), self.state.settings)
        return self.openapi_schema


def create_app(
    settings: Settings | None = None,
    *,
    chesscom_transport: httpx.AsyncBaseTransport | None = None,
    lichess_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app. Tests pass their own settings and a transport to the simulator."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        if not settings.contact_email and not settings.chesscom_user_agent:
            log.warning(
                "CONTACT_EMAIL is not set: Chess.com asks API users for contact details "
                "in the User-Agent and may refuse requests without them"
            )
        # No pre-ping: it costs three round trips (BEGIN, a ping, ROLLBACK) on every
        # checkout. A connection found dead mid-request invalidates the pool (every
        # older connection is replaced on its next checkout), and that request gets 503
        # with Retry-After: disconnects are handled when they happen, not paid for always.
        engine = create_engine(settings, pool_pre_ping=False)
        app.state.engine = engine
        app.state.read_pool = await create_read_pool(engine, settings.db_pool_size)
        app.state.session_factory = create_session_factory(engine)
        app.state.chesscom = ChessComClient(
            base_url=settings.api_base,
            user_agent=settings.user_agent,
            timeout=settings.chesscom_timeout_seconds,
            transport=chesscom_transport,
        )
        app.state.lichess = LichessClient(
            settings.lichess_base,
            user_agent=settings.user_agent,
            token=settings.lichess_token,
            timeout=settings.lichess_timeout_seconds,
            transport=lichess_transport,
        )
        gate = LichessGate(
            app.state.session_factory,
            settings.lichess_requests_per_second,
            max_wait_seconds=LICHESS_API_WAIT_SECONDS,
        )
        app.state.platforms = Platforms(
            app.state.chesscom, LichessProfiles(app.state.lichess, gate)
        )
        app.state.signer = TokenSigner(settings.resolved_secret_key())
        # The channels check subscribers' addresses (app.channels: one module per medium);
        # a webhook URL or a push endpoint is resolved with the app's resolver (tests
        # install an offline one: no test may send a DNS query off the machine).
        resolver = {"resolver": app_resolver(app)}
        app.state.channels = build_channels(
            settings, app.state.signer, {"webhook": resolver, "push": resolver}
        )
        app.state.migration_heads = migration_heads()
        app.state.background_tasks = set[asyncio.Task[None]]()
        if getattr(app.state, "freeze_gc", False):
            freeze_startup_objects()
        try:
            yield
        finally:
            for task in list(app.state.background_tasks):
                task.cancel()
            await app.state.chesscom.aclose()
            await app.state.lichess.aclose()
            for channel in app.state.channels.values():
                await channel.aclose()
            await app.state.read_pool.close()
            await engine.dispose()

    app = App(
        title="Chess.com Helper",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by app.api.ops.docs, without a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings)
    app.state.feed_bodies = FeedBodies()
    install_error_handlers(app)
    install_allow_header(app)
    install_docs(app, "/openapi.json")
    install_webhook_docs(app)

    api = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(rate_limit)],
        generate_unique_id_function=operation_id,
    )
    api.include_router(players_router)
    api.include_router(subscriptions_router)
    api.include_router(pages_router)
    api.include_router(me_router)
    api.include_router(webhook_manage_router)
    api.include_router(notifications_router)
    api.include_router(ops_router)
    api.include_router(push_router)
    api.include_router(push_manage_router)
    app.include_router(api)
    app.include_router(push_scripts)
    app.include_router(site_router)
    app.include_router(player_pages_router)
    app.include_router(webhook_pages_router)
    app.include_router(webhook_manage_pages_router)
    app.include_router(telegram_pages_router)
    # Probes at the root too: orchestrators expect them there.
    app.include_router(ops_router, include_in_schema=False)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
