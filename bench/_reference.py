"""The bare reference for bench.api_throughput: Starlette + asyncpg, nothing else.

It answers the two requests the benchmark sends with the same SQL the project runs
for them, on the same tables: the player row with its subscriber count, and one
INSERT of a subscription. No validation, no logging, no metrics, no ORM: what the
project's stack costs is the difference.

    python -m bench._reference DATABASE_URL PORT POOL_SIZE
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests import db

PLAYER_SQL = """
SELECT p.player_id, p.username, p.name, p.url, p.avatar, p.title, p.followers, p.country,
       p.location, p.status, p.league, p.last_online, p.joined, p.is_streamer, p.verified,
       p.is_playing, p.streaming_platforms, p.tracked_since, p.last_checked_at,
       (SELECT count(s.id) FROM email_subscriptions s
         WHERE s.player_id = p.player_id AND s.is_active AND s.confirmed_at IS NOT NULL)
         AS subscriber_count
FROM players p WHERE p.username = $1
"""
INSERT_SQL = """
INSERT INTO email_subscriptions (email, player_id)
SELECT $1, player_id FROM players WHERE username = $2
ON CONFLICT (email, player_id) DO NOTHING
"""


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def build(dsn: str, pool_size: int) -> Starlette:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        try:
            yield
        finally:
            await pool.close()

    async def player(request: Request) -> Response:
        assert pool is not None
        row = await pool.fetchrow(PLAYER_SQL, request.path_params["username"].lower())
        if row is None:
            return JSONResponse({"detail": "not found"}, 404)
        body = {k: _json(v) for k, v in row.items()}
        body["streaming_platforms"] = json.loads(body["streaming_platforms"])
        return JSONResponse(body)

    async def subscribe(request: Request) -> Response:
        assert pool is not None
        body = await request.json()
        await pool.execute(INSERT_SQL, body["email"], body["username"].lower())
        return JSONResponse({"status": "pending_confirmation"}, 202)

    routes = [
        Route("/api/v1/players/{username}", player, methods=["GET"]),
        Route("/api/v1/subscriptions", subscribe, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    url, port, pool_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    app = build(db.asyncpg_dsn(url), pool_size)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
