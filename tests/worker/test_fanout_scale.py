"""Fan-out at audience size (issue 9): tens of thousands of subscribers of one player.

The subscribers are seeded straight into the database; everything else is the real
path: the Chess.com simulator shows a new live game, a poll detects the session and
fans it out (one `INSERT … SELECT`), delivery sends through a real aiosmtpd server in a
process of its own (`tests.fakes.smtp_sink`, lean enough for this size).
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app.config import Settings
from tests.conftest import make_settings
from tests.fakes.processes import child_env
from tests.fakes.smtp_sink import SMTPSink
from tests.worker.conftest import WorkerFactory, World
from worker.outbox.recorder import RECORD_BATCH

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 4
# How long a wait for the worker may take before the test calls it hung: a bound on a
# condition, not a timing check (a loaded machine sends 10,000 emails slowly).
HANG_GUARD_SECONDS = 600.0
_ROW_ID = re.compile(r"^<notification-(\d+)\.")


@pytest.fixture(scope="module")
def sink() -> Iterator[SMTPSink]:
    with SMTPSink.start() as server:
        yield server


@pytest.fixture
def sink_settings(clean_db: str, tmp_path: Path, sink: SMTPSink) -> Settings:
    sink.clear()
    return make_settings(
        clean_db,
        tmp_path / "data",
        smtp_host=sink.host,
        smtp_port=sink.port,
        smtp_pool_size=CONCURRENCY,
        delivery_concurrency=CONCURRENCY,
        delivery_batch_size=500,
        # Short, so the kill test's restart waits little for the dead worker's leases; not
        # so short that a loaded CI machine stalling a second or two between a send and
        # its recorded batch lets the lease lapse (a lapsed lease is re-sent by design).
        delivery_lease_seconds=6,
        email_from="Chess.com Helper <alerts@helper.test>",
        db_pool_size=5,
    )


async def sql(world: World, statement: str, **params: Any) -> list[Any]:
    async with world.factory() as s, s.begin():
        result = await s.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def seed_audience(world: World, username: str, n: int) -> None:
    """`n` confirmed, active subscribers, written in one statement."""
    await sql(
        world,
        "INSERT INTO email_subscriptions (email, player_id, is_active, confirmed_at) "
        "SELECT 'fan' || g || '@example.com', p.player_id, true, now() "
        "FROM generate_series(1, :n) g, players p WHERE p.username = :u",
        u=username,
        n=n,
    )


async def start_session(world: World, make_worker: WorkerFactory, settings: Settings) -> None:
    """Baseline poll, then a live game ends: the next poll finds a session."""
    await make_worker(settings).run_once()
    world.sim.add_game("star", end_time=int(time.time()) - 60)
    await world.make_due()


def row_id(message_id: str) -> int:
    found = _ROW_ID.match(message_id)
    assert found, message_id
    return int(found.group(1))


async def test_50000_subscribers_each_get_exactly_one_email(
    world: World, make_worker: WorkerFactory, sink: SMTPSink, sink_settings: Settings
) -> None:
    audience = 50_000
    # One worker: a lease only lapses when its loop stalls longer than two renewals,
    # and a lapsed lease is re-sent by design. The kill tests keep leases short; here a
    # long one keeps a loaded machine's stalls from turning into doubles.
    settings = sink_settings.model_copy(update={"delivery_lease_seconds": 120})
    await world.track("star")
    await seed_audience(world, "star", audience)
    await start_session(world, make_worker, settings)

    started = time.monotonic()
    await make_worker(settings).run_once()  # detect, fan out, drain
    took = time.monotonic() - started
    counts = sink.wait_for(audience)

    deliveries = sink.deliveries()
    per_recipient = Counter(rcpt for rcpt, _ in deliveries.elements())
    assert len(per_recipient) == audience
    assert set(per_recipient.values()) == {1}, "exactly one email each"
    assert len({row_id(m) for _, m in deliveries}) == audience
    rows = await sql(world, "SELECT status, count(*) AS n FROM notification_logs GROUP BY 1")
    assert [(r.status, r.n) for r in rows] == [("sent", audience)]
    events = await sql(world, "SELECT count(*) AS n FROM events")
    assert events[0].n == 1, "the session's payload is stored once"
    assert counts["sessions"] <= CONCURRENCY, "connections are reused"
    print(f"\n{audience} emails in {took:.1f}s ({audience / took:.0f}/s)")


def worker_env(settings: Settings, sim_root: str, tmp_path: Path) -> dict[str, str]:
    return child_env(
        DATABASE_URL=str(settings.database_url),
        CHESSCOM_API_BASE=f"{sim_root}/pub",
        CONTACT_EMAIL="ci@example.com",
        LICHESS_REQUESTS_PER_SECOND=str(settings.lichess_requests_per_second),
        SMTP_HOST=str(settings.smtp_host),
        SMTP_PORT=str(settings.smtp_port),
        SMTP_POOL_SIZE=str(CONCURRENCY),
        DELIVERY_CONCURRENCY=str(CONCURRENCY),
        DELIVERY_BATCH_SIZE=str(settings.delivery_batch_size),
        DELIVERY_LEASE_SECONDS=str(settings.delivery_lease_seconds),
        EMAIL_FROM=settings.email_from,
        PUBLIC_BASE_URL="http://testserver",
        SECRET_KEY=str(settings.secret_key),
        DATA_DIR=str(tmp_path / "worker-data"),
        DB_POOL_SIZE="5",
    )


async def run_worker(env: dict[str, str], log: Path, *args: str) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "worker", *args, cwd=ROOT, env=env, stdout=out, stderr=out
        )


async def test_a_worker_killed_mid_fan_out_and_restarted_misses_nobody(
    world: World,
    make_worker: WorkerFactory,
    sink: SMTPSink,
    sink_settings: Settings,
    sim_root: str,
    tmp_path: Path,
) -> None:
    """SIGKILL in the middle of a fan-out, then a restart: every subscriber gets the
    email, and the only doubles are messages in flight at the kill (handed to the SMTP
    server, their `sent` not yet recorded)."""
    audience = 10_000
    await world.track("star")
    await seed_audience(world, "star", audience)
    await start_session(world, make_worker, sink_settings)
    env = worker_env(sink_settings, sim_root, tmp_path)
    log = tmp_path / "worker.log"

    worker = await run_worker(env, log)  # forever mode: polls, fans out, delivers
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    # Not a multiple of the claim batch: between two batches nothing is in flight.
    while sink.count()["messages"] < audience // 4 + 137:
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        assert worker.returncode is None, log.read_text()[-3000:]
        await asyncio.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    assert await worker.wait() == -signal.SIGKILL
    # What the server already received, it finishes storing (its connections close).
    await asyncio.to_thread(sink.wait_closed)

    received = {row_id(m) for _, m in sink.deliveries()}
    recorded = {
        r.id for r in await sql(world, "SELECT id FROM notification_logs WHERE status = 'sent'")
    }
    assert 0 < len(received) < audience, "the kill landed mid-fan-out"
    assert recorded <= received
    in_flight = received - recorded

    restarted = await run_worker(env, log, "--once")  # waits out the dead worker's leases
    assert await asyncio.wait_for(restarted.wait(), HANG_GUARD_SECONDS) == 0, log.read_text()[
        -3000:
    ]
    sink.wait_for(audience)

    deliveries = sink.deliveries()
    per_recipient = Counter(rcpt for rcpt, _ in deliveries.elements())
    assert len(per_recipient) == audience, "nobody missed"
    doubled = {row_id(m) for (_, m), n in deliveries.items() if n > 1}
    assert len({m for _, m in deliveries}) == audience, "a resend reuses its Message-ID"
    assert doubled <= in_flight, "only messages in flight at the kill were sent twice"
    # In flight: the sends under way plus the outcomes not yet recorded (a batch
    # waiting to be recorded and one being written).
    assert len(in_flight) <= CONCURRENCY + 2 * RECORD_BATCH, len(in_flight)
    rows = await sql(world, "SELECT status, count(*) AS n FROM notification_logs GROUP BY 1")
    assert [(r.status, r.n) for r in rows] == [("sent", audience)]
    print(
        f"\nSIGKILL after {len(received)}/{audience} messages; in flight {len(in_flight)}, "
        f"sent twice {len(doubled)}"
    )


async def test_a_killed_workers_rows_are_taken_over_within_one_lease(
    world: World,
    make_worker: WorkerFactory,
    sink: SMTPSink,
    sink_settings: Settings,
    sim_root: str,
    tmp_path: Path,
) -> None:
    """SPEC §7: a claimed row's lease is renewed while it is worked on, so it stays
    short (DELIVERY_LEASE_SECONDS, 10 s by default) and a dead worker's rows go to a
    fresh one within it, in a 5,000-subscriber fan-out killed with SIGKILL."""
    audience = 5_000
    lease = Settings.model_fields["delivery_lease_seconds"].default
    assert lease <= 15
    settings = sink_settings.model_copy(update={"delivery_lease_seconds": lease})
    await world.track("star")
    await seed_audience(world, "star", audience)
    await start_session(world, make_worker, settings)
    env = worker_env(settings, sim_root, tmp_path)
    log = tmp_path / "worker.log"

    worker = await run_worker(env, log)
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while sink.count()["messages"] < audience // 4 + 137:
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        assert worker.returncode is None, log.read_text()[-3000:]
        await asyncio.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    assert await worker.wait() == -signal.SIGKILL
    # Every lease the dead worker held ends within one lease of its death.
    (held,) = await sql(
        world,
        "SELECT count(*) AS n, extract(epoch FROM max(locked_until) - now()) AS left "
        "FROM notification_logs WHERE status = 'pending' AND locked_until > now()",
    )
    assert held.n > 0, "the kill left rows leased"
    assert held.left <= lease, held
    leased = await sql(
        world, "SELECT id FROM notification_logs WHERE status = 'pending' AND locked_until > now()"
    )

    fresh = await run_worker(env, log)  # a fresh worker, in forever mode
    try:
        pending = [1]
        while pending:  # the dead worker's rows, taken over by the fresh one
            assert time.monotonic() - killed_at < HANG_GUARD_SECONDS, log.read_text()[-3000:]
            await asyncio.sleep(0.05)
            pending = await sql(
                world,
                "SELECT id FROM notification_logs WHERE status = 'pending' AND id = ANY(:ids)",
                ids=[r.id for r in leased],
            )
        taken_over = time.monotonic() - killed_at
        rows = await sql(world, "SELECT status, count(*) AS n FROM notification_logs GROUP BY 1")
        while [(r.status, r.n) for r in rows] != [("sent", audience)]:
            assert time.monotonic() - killed_at < HANG_GUARD_SECONDS, (
                rows,
                log.read_text()[-3000:],
            )
            await asyncio.sleep(0.05)
            rows = await sql(
                world, "SELECT status, count(*) AS n FROM notification_logs GROUP BY 1"
            )
        took_over = time.monotonic() - killed_at
        await asyncio.to_thread(sink.wait_for, audience, 30)
    finally:
        fresh.send_signal(signal.SIGTERM)
        await fresh.wait()
    deliveries = sink.deliveries()
    per_recipient = Counter(rcpt for rcpt, _ in deliveries.elements())
    assert len(per_recipient) == audience, "nobody missed"
    doubled = sum(n - 1 for n in deliveries.values())
    assert doubled <= CONCURRENCY + 2 * RECORD_BATCH, doubled
    print(
        f"\nSIGKILL with {held.n} rows leased ({held.left:.1f} s of lease left); the fresh "
        f"worker had sent them {taken_over:.1f} s after the kill (started at once) and "
        f"reached everyone after {took_over:.1f} s; sent twice {doubled}"
    )
