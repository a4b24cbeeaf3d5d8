"""Admin API tokens (issue 4 §1, SPEC §4, §5): made by the CLI, stored hashed, revocable.

`python -m app.cli tokens create NAME` prints the token once; the database keeps only
its hash and last use; `list` never shows a token; `revoke` makes it useless; and a
401 says nothing about whether a token exists.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin_tokens import hash_token
from app.config import PROJECT_ROOT
from app.models import ApiToken

pytestmark = pytest.mark.usefixtures("clean_db")

ADMIN_ROUTE = "/api/v1/notifications"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


async def cli(database_url: str, *args: str) -> Run:
    """`python -m app.cli ARGS` in a clean environment: only DATABASE_URL is set."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DATABASE_URL": database_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def create_token(database_url: str, name: str) -> str:
    run = await cli(database_url, "tokens", "create", name)
    assert run.code == 0, run.stderr
    lines = run.stdout.split()
    assert len(lines) == 1, "stdout carries the token and nothing else"
    return lines[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token_row(factory: async_sessionmaker[AsyncSession], name: str) -> ApiToken | None:
    async with factory() as s:
        return await s.scalar(select(ApiToken).where(ApiToken.name == name))


async def test_create_prints_the_token_once_and_stores_only_its_hash(
    clean_db: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    run = await cli(clean_db, "tokens", "create", "ops-laptop")
    assert run.code == 0, run.stderr
    token = run.stdout.strip()
    assert len(token) >= 32 and run.stdout.count(token) == 1
    assert token not in run.stderr
    assert "shown only once" in run.stderr

    row = await token_row(session_factory, "ops-laptop")
    assert row is not None
    assert row.token_hash == hash_token(token) != token
    assert row.last_used_at is None
    # Not in any column, in any form PostgreSQL can render the row as.
    async with session_factory() as s:
        leaked = await s.scalar(
            text("SELECT count(*) FROM api_tokens t WHERE position(:tok in t::text) > 0"),
            {"tok": token},
        )
    assert leaked == 0


async def test_created_token_is_an_admin_token_and_its_use_is_recorded(
    clean_db: str,
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    token = await create_token(clean_db, "ci")
    assert (await client.get(ADMIN_ROUTE)).status_code == 401

    r = await client.get(ADMIN_ROUTE, headers=bearer(token))
    assert r.status_code == 200
    assert r.json()["total"] == 0
    row = await token_row(session_factory, "ci")
    assert row is not None and row.last_used_at is not None

    # `list` shows the name and when it was used, never the token or its hash.
    listing = await cli(clean_db, "tokens", "list")
    assert listing.code == 0, listing.stderr
    assert "ci" in listing.stdout
    assert "never" not in listing.stdout.splitlines()[1]
    for secret in (token, hash_token(token)):
        assert secret not in listing.stdout + listing.stderr


async def test_revoked_token_is_refused(
    clean_db: str, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    token = await create_token(clean_db, "temp")
    keep = await create_token(clean_db, "keep")
    assert (await client.get(ADMIN_ROUTE, headers=bearer(token))).status_code == 200

    run = await cli(clean_db, "tokens", "revoke", "temp")
    assert run.code == 0, run.stderr
    assert token not in run.stdout + run.stderr
    assert await token_row(session_factory, "temp") is None

    assert (await client.get(ADMIN_ROUTE, headers=bearer(token))).status_code == 401
    assert (await client.get(ADMIN_ROUTE, headers=bearer(keep))).status_code == 200
    # Revoking what does not exist fails, and says so.
    again = await cli(clean_db, "tokens", "revoke", "temp")
    assert again.code != 0 and "temp" in again.stderr


async def test_duplicate_name_fails_and_keeps_the_first_token(
    clean_db: str, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    first = await create_token(clean_db, "dup")
    run = await cli(clean_db, "tokens", "create", "dup")
    assert run.code != 0
    assert run.stdout.strip() == "", "no token is printed when none was stored"
    assert "dup" in run.stderr
    async with session_factory() as s:
        rows = (await s.scalars(select(ApiToken).where(ApiToken.name == "dup"))).all()
    assert len(rows) == 1 and rows[0].token_hash == hash_token(first)
    assert (await client.get(ADMIN_ROUTE, headers=bearer(first))).status_code == 200


@pytest.mark.parametrize("args", [["tokens", "create", ""], ["tokens", "frobnicate"], []])
async def test_cli_refuses_bad_arguments(clean_db: str, args: list[str]) -> None:
    run = await cli(clean_db, *args)
    assert run.code != 0
    assert run.stdout.strip() == ""


async def test_admin_token_from_settings_keeps_working(
    clean_db: str, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create_token(clean_db, "cli-made")
    r = await client.get(ADMIN_ROUTE, headers=admin)
    assert r.status_code == 200
    # Other admin routes too (404: past the admin check), including a mutating one.
    listing = await client.get("/api/v1/players/hikaru/subscriptions", headers=admin)
    assert listing.status_code == 404
    erased = await client.delete("/api/v1/subscribers/nobody@example.com", headers=admin)
    assert erased.status_code == 404  # nothing stored about it


async def test_401_answers_are_identical_so_tokens_cannot_be_enumerated(
    clean_db: str, client: httpx.AsyncClient
) -> None:
    """Missing, malformed, wrong and revoked tokens all get byte-identical answers."""
    revoked = await create_token(clean_db, "revoked")
    assert (await cli(clean_db, "tokens", "revoke", "revoked")).code == 0
    live = await create_token(clean_db, "live")
    near_miss = live[:-1] + ("A" if live[-1] != "A" else "B")
    attempts: dict[str, dict[str, str]] = {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "no scheme": {"Authorization": live},
        "garbage": {"Authorization": "Bearer \x7fnot a token at all"},
        "wrong": bearer("cch_" + "x" * 43),
        "near miss of a live token": bearer(near_miss),
        "revoked": bearer(revoked),
        "very long": bearer("cch_" + "y" * 5000),
    }
    answers = {}
    for label, headers in attempts.items():
        for method, path in (("GET", ADMIN_ROUTE), ("DELETE", "/api/v1/subscribers/a@example.com")):
            r = await client.request(method, path, headers=headers)
            assert r.status_code == 401, label
            answers[label, method] = (r.content, sorted(r.headers.items()))
    reference = answers["missing", "GET"]
    assert reference[0] and b"detail" in reference[0]
    assert dict(reference[1]).get("www-authenticate") == "Bearer"
    for (label, method), answer in answers.items():
        expected = reference if method == "GET" else answers["missing", "DELETE"]
        assert answer == expected, f"{label} ({method}) is distinguishable"
    assert answers["missing", "DELETE"][0] == reference[0]
