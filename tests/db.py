"""Test databases on the real PostgreSQL: a migrated database per test session."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from app.models import Base

ROOT = Path(__file__).resolve().parent.parent
# A cluster started for the tests skips the flushes to disk (as scripts/test.sh does):
# test databases are created, truncated and dropped all the time, and CREATE and DROP
# DATABASE wait on a checkpoint. Nothing in them needs to survive a power cut.
FAST_PG_OPTS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def server_url() -> str:
    """DATABASE_URL from the environment (make test sets it), else start the local cluster."""
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    env = {**os.environ, "LOCAL_PG_OPTS": os.environ.get("LOCAL_PG_OPTS", FAST_PG_OPTS)}
    out = subprocess.run(
        [str(ROOT / "scripts" / "localdb.sh"), "start"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return out.stdout.strip().splitlines()[-1]


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def recreate_database(url: str, name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(with_database(url, "postgres")))
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        tmpl = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
    finally:
        await conn.close()
    return with_database(url, name)


async def drop_database(url: str, name: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(with_database(url, "postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_database(url: str, name: str, *, migrate: bool = False) -> AsyncIterator[str]:
    """A fresh database `name` on the server of `url` (migrated to head if asked); yields
    its URL and drops it afterwards whatever happens."""
    scratch = await recreate_database(url, name)
    try:
        if migrate:
            await upgrade(scratch)
        yield scratch
    finally:
        await drop_database(url, name)


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    # Alembic's env.py runs its own event loop: keep it off ours.
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def downgrade(url: str, revision: str = "base") -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


# A table that held more rows than this is truncated after its rows are deleted, so
# later tests do not scan the dead rows a scale test left behind.
BIG_TABLE_ROWS = 1000


async def truncate_all(url: str) -> None:
    """Empty every table and restart the sequences the tables own, as `TRUNCATE ...
    RESTART IDENTITY` does, but by DELETE: most tests leave a few rows, and TRUNCATE
    makes new files for every table and index (about 0.1 s per test, a minute of the
    suite); a DELETE of an almost empty table costs well under a millisecond."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        big = []
        async with conn.transaction():
            for name in reversed(table_names()):  # those holding foreign keys first
                status = await conn.execute(f"DELETE FROM {name}")
                if int(status.split()[-1]) > BIG_TABLE_ROWS:
                    big.append(name)
        if big:
            await conn.execute(f"TRUNCATE {', '.join(big)} CASCADE")  # all empty by now
        for (sequence,) in await conn.fetch(_USED_OWNED_SEQUENCES, table_names()):
            await conn.execute(f"ALTER SEQUENCE {sequence} RESTART")
    finally:
        await conn.close()


# Sequences owned by a column of these tables (serial or identity: what RESTART IDENTITY
# restarts) that have handed out a value since they were last restarted.
_USED_OWNED_SEQUENCES = """
SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.sequencename)
FROM pg_sequences AS s
JOIN pg_class AS seq ON seq.relname = s.sequencename
JOIN pg_namespace AS ns ON ns.oid = seq.relnamespace AND ns.nspname = s.schemaname
JOIN pg_depend AS d ON d.objid = seq.oid AND d.classid = 'pg_class'::regclass
                   AND d.deptype IN ('a', 'i')
JOIN pg_class AS t ON t.oid = d.refobjid
WHERE s.last_value IS NOT NULL AND t.relname = ANY($1::text[])
"""


def table_names() -> list[str]:
    """Every table of the models, from their metadata (new tables are emptied too)."""
    return [table.name for table in Base.metadata.sorted_tables]
