"""Backups (issue 10 item 6): the README's pg_dump / pg_restore commands, run for real.

A database in use (a tracked player, subscribers, emails already sent, a confirmation
still pending) is dumped, restored into an empty database, and served again: /readyz
200, players and subscriptions intact, and no email that had left is sent again.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.main import create_app
from tests import db
from tests.conftest import ADMIN_TOKEN, chesscom_client, make_settings
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.smtp import SMTPServerFake, running_smtp_server
from worker.runner import Worker

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]


def pg_tool(name: str) -> str:
    """The newest PostgreSQL client binary (pg_dump must not be older than the server)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    path = found[-1] if found else shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found: install the PostgreSQL client (Debian: postgresql)")
    return path


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[4])
    except (IndexError, ValueError):
        return 0.0


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL for the command line tools, the password passed in the environment."""
    parsed = make_url(url)
    env = {**os.environ, "PGPASSWORD": parsed.password or ""}
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def run(*args: str, env: dict[str, str]) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


async def run_worker_once(
    url: str, sim: ChessComSimulator, smtp: SMTPServerFake, data: Path
) -> None:
    settings = make_settings(url, data, smtp_host=smtp.host, smtp_port=smtp.port)
    worker = Worker(settings, client=chesscom_client(settings, sim.transport(), timeout=10))
    try:
        await worker.run_once()
    finally:
        await worker.aclose()


async def test_a_dump_restored_into_an_scratch_url_serves_again(
    clean_db: str, scratch_url: str, tmp_path: Path
) -> None:
    sim = ChessComSimulator()
    data = sim.add_player("hikaru")
    conn = await asyncpg.connect(db.asyncpg_dsn(clean_db))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, username, url) VALUES ($1, 'hikaru', $2)",
            data["player_id"],
            data["url"],
        )
        await conn.execute(
            "INSERT INTO email_subscriptions (email, player_id, is_active, confirmed_at) "
            "SELECT 'fan' || g || '@example.com', $1, true, now() FROM generate_series(1, 3) g",
            data["player_id"],
        )
    finally:
        await conn.close()

    with running_smtp_server() as smtp:
        await run_worker_once(clean_db, sim, smtp, tmp_path / "data")  # baseline
        sim.add_game("hikaru", end_time=int(time.time()) - 60)
        await run_worker_once(clean_db, sim, smtp, tmp_path / "data")
        assert len(smtp.messages) == 3  # the session, emailed to three fans

        # -- the README's commands ------------------------------------------------------
        dump = tmp_path / "chesshelper.dump"
        source, env = libpq(clean_db)
        run(pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dump}", source, env=env)
        target, env = libpq(scratch_url)
        run(
            pg_tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={target}",
            str(dump),
            env=env,
        )
        await db.upgrade(scratch_url)  # a no-op at the same version; upgrades an old dump

        # -- it serves again ------------------------------------------------------------
        settings = make_settings(scratch_url, tmp_path / "api-data")
        app = create_app(settings, chesscom_transport=sim.transport())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                ready = await client.get("/api/v1/readyz")
                assert ready.status_code == 200, ready.text
                player = await client.get("/api/v1/players/hikaru")
                assert player.status_code == 200
                assert player.json()["subscriber_count"] == 3
                subs = await client.get(
                    "/api/v1/players/hikaru/subscriptions",
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                assert subs.status_code == 200, subs.text
                emails = sorted(s["email"] for s in _items(subs.json()))
                assert emails == ["fan1@example.com", "fan2@example.com", "fan3@example.com"]

        # The restored poll state and outbox: the session is not emailed again.
        sim.add_player("newcomer")  # untouched: only hikaru is tracked
        await run_worker_once(scratch_url, sim, smtp, tmp_path / "data")
        assert len(smtp.messages) == 3, [m.subject for m in smtp.messages[3:]]


def _items(body: object) -> list[dict[str, object]]:
    if isinstance(body, dict):
        items = body.get("items", [])
        assert isinstance(items, list)
        return items
    assert isinstance(body, list)
    return body
