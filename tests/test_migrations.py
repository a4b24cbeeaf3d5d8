"""Migrations (SPEC §5): empty → head → empty → head, no drift from the models, indexed keys.

Each test works on its own scratch database, never on the session's migrated one.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Base
from tests import db

MODEL_TABLES = set(db.table_names())


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(db.alembic_config("postgresql+asyncpg://unused/none"))


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def public_tables(url: str) -> set[str]:
    rows = await fetch(
        url, "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
    )
    return {r["tablename"] for r in rows}


async def current_revisions(url: str) -> set[str]:
    return {r["version_num"] for r in await fetch(url, "SELECT version_num FROM alembic_version")}


def test_there_is_exactly_one_head() -> None:
    assert len(script_directory().get_heads()) == 1


# What a downgrade to base must not leave in the public schema: relations (tables,
# sequences, indexes; alembic's own table aside) and enum types.
_LEFTOVERS = (
    "SELECT c.relname FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relname NOT LIKE 'alembic_version%'",
    "SELECT t.typname FROM pg_catalog.pg_type t "
    "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
    "WHERE n.nspname = 'public' AND t.typtype = 'e'",
)


async def test_upgrade_downgrade_upgrade_round_trip(scratch_url: str) -> None:
    head = set(script_directory().get_heads())
    assert await public_tables(scratch_url) == set()

    await db.upgrade(scratch_url)
    assert await public_tables(scratch_url) == MODEL_TABLES | {"alembic_version"}
    assert await current_revisions(scratch_url) == head

    await db.downgrade(scratch_url, "base")
    assert await public_tables(scratch_url) <= {"alembic_version"}
    # Nothing else the migrations created may survive a downgrade either.
    for leftovers in _LEFTOVERS:
        assert await fetch(scratch_url, leftovers) == [], leftovers

    await db.upgrade(scratch_url)
    assert await public_tables(scratch_url) == MODEL_TABLES | {"alembic_version"}
    assert await current_revisions(scratch_url) == head


async def test_every_revision_steps_down_and_up_again(scratch_url: str) -> None:
    """The 'stairway': each revision's downgrade undoes exactly its upgrade."""
    revisions = list(reversed(list(script_directory().walk_revisions())))
    for revision in revisions:
        await db.upgrade(scratch_url, revision.revision)
        await db.downgrade(scratch_url, "-1")
        await db.upgrade(scratch_url, revision.revision)
        assert await current_revisions(scratch_url) == {revision.revision}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(scratch_url: str) -> None:
    await db.upgrade(scratch_url)
    engine = create_async_engine(scratch_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_every_foreign_key_is_indexed(scratch_url: str) -> None:
    await db.upgrade(scratch_url)
    foreign_keys = await fetch(
        scratch_url,
        """
        SELECT c.conname, c.conrelid::regclass::text AS table_name, c.conkey::int2[] AS columns
        FROM pg_catalog.pg_constraint c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
        WHERE c.contype = 'f' AND n.nspname = 'public'
        """,
    )
    assert {fk["table_name"] for fk in foreign_keys} == {
        "email_subscriptions",
        "events",
        "notification_logs",
    }
    for fk in foreign_keys:
        # A full (non-partial) index whose leading columns are the key's columns.
        covering = await fetch(
            scratch_url,
            """
            SELECT i.indexrelid::regclass::text AS index_name
            FROM pg_catalog.pg_index i
            WHERE i.indrelid = $1::regclass
              AND i.indpred IS NULL
              AND (i.indkey::int2[])[0:cardinality($2::int2[]) - 1] = $2::int2[]
            """,
            fk["table_name"],
            fk["columns"],
        )
        assert covering, f"foreign key {fk['conname']} has no index"


async def unique_constraints(url: str, table: str) -> dict[str, list[str]]:
    rows = await fetch(
        url,
        """
        SELECT c.conname,
               array_agg(a.attname ORDER BY k.ord) AS columns
        FROM pg_catalog.pg_constraint c
        CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.contype = 'u' AND c.conrelid = $1::regclass
        GROUP BY c.conname
        """,
        table,
    )
    return {r["conname"]: list(r["columns"]) for r in rows}


async def test_notification_logs_carry_the_idempotency_key(scratch_url: str) -> None:
    await db.upgrade(scratch_url)
    keys = await unique_constraints(scratch_url, "notification_logs")
    assert ["subscription_id", "event_id", "notification_type"] in keys.values()

    # And the database really refuses a second row for the same event.
    conn = await asyncpg.connect(db.asyncpg_dsn(scratch_url))
    try:
        await conn.execute("INSERT INTO players (player_id, username) VALUES (1, 'hikaru')")
        sub_id = await conn.fetchval(
            "INSERT INTO email_subscriptions (email, player_id) VALUES ('a@example.com', 1) "
            "RETURNING id"
        )
        event_id = await conn.fetchval(
            "INSERT INTO events (kind, player_id, key) VALUES ('live_match', 1, 'game-1') "
            "RETURNING id"
        )
        insert = "INSERT INTO notification_logs (subscription_id, event_id) VALUES ($1, $2)"
        await conn.execute(insert, sub_id, event_id)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert, sub_id, event_id)
        # Another notification type for the same event is a different email.
        await conn.execute(
            "INSERT INTO notification_logs (subscription_id, event_id, notification_type) "
            "VALUES ($1, $2, 'confirmation')",
            sub_id,
            event_id,
        )
    finally:
        await conn.close()


async def test_other_unique_keys_of_spec(scratch_url: str) -> None:
    await db.upgrade(scratch_url)
    # A player is (platform, username) (SPEC §5, issue 19).
    assert ["platform", "username"] in (await unique_constraints(scratch_url, "players")).values()
    assert ["email", "player_id"] in (
        await unique_constraints(scratch_url, "email_subscriptions")
    ).values()
    assert ["token_hash"] in (await unique_constraints(scratch_url, "api_tokens")).values()
