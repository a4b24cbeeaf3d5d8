"""asyncpg connect arguments are derived once (issue 18 item 6), by SQLAlchemy's asyncpg
dialect: the engine, the API's read pool and the worker's LISTEN connection reach the
same server the same way, whatever the URL carries."""

from __future__ import annotations

import asyncpg

from app.db import asyncpg_connect_args
from worker import listener


def test_every_part_of_the_url_is_kept() -> None:
    assert asyncpg_connect_args("postgresql+asyncpg://u:p%40ss@db.internal:5433/chess") == {
        "host": "db.internal",
        "port": 5433,
        "user": "u",
        "password": "p@ss",
        "database": "chess",
    }
    # What the POSTGRES_SSLMODE setting appends, and a Unix socket instead of a host.
    assert asyncpg_connect_args("postgresql+asyncpg://u:p@h/chess?ssl=require")["ssl"] == (
        "require"
    )
    assert asyncpg_connect_args("postgresql+asyncpg://u@/chess?host=/run/pg")["host"] == "/run/pg"


def test_the_adapters_own_options_are_left_out() -> None:
    args = asyncpg_connect_args("postgresql+asyncpg://u:p@h/chess?prepared_statement_cache_size=0")
    assert "prepared_statement_cache_size" not in args


def test_the_worker_listens_with_the_same_arguments() -> None:
    assert listener.asyncpg_connect_args is asyncpg_connect_args


async def test_the_arguments_reach_the_test_database(database_url: str) -> None:
    conn = await asyncpg.connect(**asyncpg_connect_args(database_url))
    try:
        assert await conn.fetchval("SELECT current_database()") == database_url.rsplit("/", 1)[1]
    finally:
        await conn.close()
