"""The worker as real OS processes (SPEC §6-§7): `python -m worker [--once]` against the
test database, the Chess.com simulator on a real port and the SMTP fake.

What only processes can show: exit codes, signals (SIGTERM drains, SIGKILL loses
nothing thanks to leases), several workers racing on one database, the settings
error line, and NOTIFY waking a sleeping delivery loop.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import text

from tests.conftest import make_settings
from tests.fakes.processes import child_env
from tests.fakes.smtp import SMTPServerFake, _Handler
from tests.worker.conftest import WorkerFactory, World
from worker.outbox.recorder import RECORD_BATCH

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "process-test-secret-key-" + "y" * 32
DELIVERY_CONCURRENCY = 4
LEASE_SECONDS = 2
GRACE_SECONDS = 5.0
PROCESS_TIMEOUT = 45.0


# -- fakes ---------------------------------------------------------------------------


class _SlowHandler(_Handler):
    """The fake's handler, answering DATA only after `fake.delay` seconds (a slow relay)."""

    fake: SlowSMTPServer

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.fake.delay:
            await asyncio.sleep(self.fake.delay)
        return await super().handle_DATA(server, session, envelope)


class SlowSMTPServer(SMTPServerFake):
    delay: float = 0.0

    def start(self) -> None:
        super().start()
        assert self._controller is not None
        # Sessions opened from now on use the slow handler (the controller builds one
        # protocol per connection from `controller.handler`).
        self._controller.handler = _SlowHandler(self)


@pytest.fixture
def smtp_server() -> Iterator[SlowSMTPServer]:
    """Overrides the worker conftest's fake: the same server, with an optional delay."""
    server = SlowSMTPServer()
    with server:
        yield server


# -- processes -----------------------------------------------------------------------


@pytest.fixture
def worker_env(
    clean_db: str, sim_root: str, smtp_server: SlowSMTPServer, tmp_path: Path
) -> dict[str, str]:
    """A child environment built explicitly: nothing of ours leaks in from the shell."""
    return child_env(
        DATABASE_URL=clean_db,
        CHESSCOM_API_BASE=f"{sim_root}/pub",
        CONTACT_EMAIL="ci@example.com",
        CHESSCOM_TIMEOUT_SECONDS="5",
        SMTP_HOST=smtp_server.host,
        SMTP_PORT=str(smtp_server.port),
        SMTP_POOL_SIZE="4",
        EMAIL_FROM="Chess.com Helper <alerts@helper.test>",
        PUBLIC_BASE_URL="http://testserver",
        SECRET_KEY=SECRET_KEY,
        DATA_DIR=str(tmp_path / "worker-data"),
        CHESSCOM_REQUESTS_PER_SECOND="1000",
        LICHESS_REQUESTS_PER_SECOND="100",  # as tests.conftest.make_settings says
        DELIVERY_CONCURRENCY=str(DELIVERY_CONCURRENCY),
        DELIVERY_LEASE_SECONDS=str(LEASE_SECONDS),
        DELIVERY_RETRY_BASE_SECONDS="0.05",
        SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
        DB_POOL_SIZE="5",
        DB_MAX_OVERFLOW="5",
        LOG_LEVEL="INFO",
    )


class WorkerProcess:
    """One `python -m worker` child; its output goes to a file (no pipe to fill up)."""

    _count = 0

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, env: dict[str, str], *args: str, log_dir: Path) -> WorkerProcess:
        cls._count += 1
        log = log_dir / f"worker-{cls._count}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker", *args, cwd=ROOT, env=env, stdout=out, stderr=out
            )
        return cls(proc, log)

    async def wait(self, timeout: float = PROCESS_TIMEOUT) -> int:  # noqa: ASYNC109
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"worker did not exit in {timeout}s\n{self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill_if_running(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


@pytest.fixture
async def spawn(tmp_path: Path) -> Any:
    started: list[WorkerProcess] = []

    async def factory(env: dict[str, str], *args: str) -> WorkerProcess:
        wp = await WorkerProcess.start(env, *args, log_dir=tmp_path)
        started.append(wp)
        return wp

    yield factory
    for wp in started:  # never leave a worker behind a failed test
        wp.kill_if_running()
        await wp.proc.wait()


async def run_once(spawn: Any, env: dict[str, str]) -> WorkerProcess:
    wp: WorkerProcess = await spawn(env, "--once")
    rc = await wp.wait()
    assert rc == 0, wp.output()
    return wp


# -- helpers -------------------------------------------------------------------------


async def sql(world: World, statement: str, **params: Any) -> list[Any]:
    """Run one statement in its own transaction; the rows of a query, else []."""
    async with world.factory() as s, s.begin():
        result = await s.execute(text(statement), params)
        return list(result.all()) if statement.lstrip().upper().startswith("SELECT") else []


async def add_subscribers(world: World, username: str, n: int, prefix: str = "fan") -> None:
    """n confirmed, active subscribers in one statement."""
    await sql(
        world,
        "INSERT INTO email_subscriptions (email, player_id, is_active, confirmed_at) "
        "SELECT :prefix || g || '.' || :u || '@example.com', p.player_id, true, now() "
        "FROM generate_series(1, :n) g, players p WHERE p.username = :u",
        prefix=prefix,
        u=username,
        n=n,
    )


async def star_session_waiting(world: World, subscribers: int, *idle: str) -> None:
    """`star` with `subscribers` subscribers (and the `idle` players) past the baseline
    poll, and a new live game of star's due to be detected."""
    await world.track("star")
    await add_subscribers(world, "star", subscribers)
    for name in idle:
        await world.track(name)
    await world.make_worker().run_once()  # baseline
    world.sim.add_game("star", end_time=now() - 60)
    await world.make_due()


def per_message(smtp: SMTPServerFake) -> Counter[tuple[str, str]]:
    """How often each (recipient, Message-ID) arrived."""
    return Counter((rcpt, m.message_id) for m in smtp.messages for rcpt in m.rcpt_tos)


async def wait_until(predicate: Any, timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def now() -> int:
    return int(time.time())


# -- a. --once ------------------------------------------------------------------------


async def test_once_polls_everyone_drains_the_outbox_and_exits_0(
    world: World, worker_env: dict[str, str], spawn: Any, smtp_server: SlowSMTPServer
) -> None:
    for name in ("alice", "bob", "carol"):
        await world.track(name)
        world.sim.add_game(name, end_time=now() - 7200)
        await add_subscribers(world, name, 2)

    await run_once(spawn, worker_env)  # baseline
    rows = await sql(
        world,
        "SELECT username FROM players "
        "WHERE detection_state ? 'baseline_done' AND last_checked_at IS NOT NULL",
    )
    assert sorted(r.username for r in rows) == ["alice", "bob", "carol"]
    assert smtp_server.messages == []

    world.sim.add_game("alice", end_time=now() - 120)
    world.sim.add_game("bob", end_time=now() - 60, time_class="bullet")
    second = await run_once(spawn, worker_env)
    # One summary line says what the pass did: two new sessions, four emails.
    assert "once: players 2 notified, 1 unchanged; emails 4 sent" in second.output()

    got = per_message(smtp_server)
    recipients = sorted(rcpt for rcpt, _ in got)
    assert recipients == [
        "fan1.alice@example.com",
        "fan1.bob@example.com",
        "fan2.alice@example.com",
        "fan2.bob@example.com",
    ]
    assert set(got.values()) == {1}
    statuses = await sql(world, "SELECT status, count(*) AS n FROM notification_logs GROUP BY 1")
    assert [(r.status, r.n) for r in statuses] == [("sent", 4)]


# -- b. three workers together -----------------------------------------------------


async def test_three_once_workers_together_send_exactly_one_email_per_subscriber(
    world: World,
    worker_env: dict[str, str],
    spawn: Any,
    smtp_server: SlowSMTPServer,
    make_worker: WorkerFactory,
) -> None:
    players = [f"player{i:02d}" for i in range(30)]
    for name in players:
        await world.track(name)
        await add_subscribers(world, name, 3)
    await make_worker().run_once()  # baseline (in-process: faster, same effect)

    for name in players:
        world.sim.add_game(name, end_time=now() - 90)
    world.sim.latency_seconds = 0.02  # polls of the three workers overlap
    env = {
        **worker_env,
        "POLL_BATCH_SIZE": "4",  # small claims so the workers interleave
        "DELIVERY_LEASE_SECONDS": "30",  # no kill here: a lease must outlive a send
    }
    workers = [await spawn(env, "--once") for _ in range(3)]
    codes = await asyncio.gather(*(w.wait() for w in workers))
    assert codes == [0, 0, 0], "\n---\n".join(w.output() for w in workers)

    got = per_message(smtp_server)
    expected = {f"fan{k}.{name}@example.com" for name in players for k in (1, 2, 3)}
    assert {rcpt for rcpt, _ in got} == expected
    assert len(got) == 90 and set(got.values()) == {1}, "one email per subscriber per session"
    statuses = await sql(
        world, "SELECT status, count(*) AS n, max(attempts) AS a FROM notification_logs GROUP BY 1"
    )
    assert [(r.status, r.n) for r in statuses] == [("sent", 90)]
    # One event per player: the session was detected once, whoever detected it.
    events = await sql(world, "SELECT count(DISTINCT event_id) AS n FROM notification_logs")
    assert events[0].n == 30


# -- c. SIGKILL mid-delivery --------------------------------------------------------


async def test_sigkill_mid_delivery_loses_nothing_and_duplicates_only_in_flight_messages(
    world: World,
    worker_env: dict[str, str],
    spawn: Any,
    smtp_server: SlowSMTPServer,
) -> None:
    subscribers = 300
    await star_session_waiting(world, subscribers)
    smtp_server.delay = 0.03  # 4 connections x ~33 msg/s: 300 messages take seconds

    worker = await spawn(worker_env)  # forever mode
    await wait_until(lambda: len(smtp_server.messages) >= 40, 30, "the first messages")
    worker.proc.send_signal(signal.SIGKILL)
    assert await worker.wait() == -signal.SIGKILL
    await asyncio.sleep(0.3)  # let the server finish what it already received
    at_kill = len(smtp_server.messages)
    assert 0 < at_kill < subscribers, "the kill landed mid-delivery"
    leftover = await sql(
        world, "SELECT count(*) AS n FROM notification_logs WHERE status = 'pending'"
    )
    assert leftover[0].n > 0

    smtp_server.delay = 0.0
    # --once waits for the dead worker's leases (LEASE_SECONDS) to lapse, then sends.
    await run_once(spawn, worker_env)

    got = per_message(smtp_server)
    assert len({rcpt for rcpt, _ in got}) == subscribers, "every subscriber served"
    assert len(got) == subscribers, "one Message-ID per row: resends reuse it"
    duplicates = sum(n - 1 for n in got.values())
    # Bound: a row is re-sent only if the SMTP server accepted it but the dead worker
    # had not recorded `sent` yet: the DELIVERY_CONCURRENCY sends under way, plus the
    # outcomes waiting to be recorded (a batch of RECORD_BATCH, and one being written).
    # Rows claimed but not yet sent are merely leased: they are sent once, after the
    # lease. (tests/worker/test_fanout_scale.py checks each double was in flight.)
    assert duplicates <= DELIVERY_CONCURRENCY + 2 * RECORD_BATCH, f"{duplicates} duplicates"
    print(f"\nSIGKILL after {at_kill}/{subscribers} messages; duplicates: {duplicates}")
    rows = await sql(world, "SELECT status, count(*) AS n FROM notification_logs GROUP BY 1")
    assert [(r.status, r.n) for r in rows] == [("sent", subscribers)]


async def test_a_send_slower_than_the_lease_keeps_its_row_while_another_worker_runs(
    world: World,
    worker_env: dict[str, str],
    spawn: Any,
    smtp_server: SlowSMTPServer,
) -> None:
    """The lease is renewed while a row is worked on (SPEC §7): a relay that takes
    longer than the whole lease to accept a message does not let a second worker, idle
    and claiming, take the row and send it again."""
    subscribers = 8
    await star_session_waiting(world, subscribers)
    smtp_server.delay = 1.5 * LEASE_SECONDS  # each send outlasts the lease

    first = await spawn(worker_env)
    await wait_until(lambda: len(smtp_server.messages) >= 1, 30, "the first slow send")
    second = await spawn(worker_env)  # claims whatever lease lapses
    await wait_until(lambda: len(smtp_server.messages) >= subscribers, 60, "every message")
    await asyncio.sleep(2 * LEASE_SECONDS)  # room for a double, were one coming

    got = per_message(smtp_server)
    assert len(got) == subscribers and set(got.values()) == {1}, got
    rows = await sql(world, "SELECT status, attempts FROM notification_logs")
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}, "claimed once each"
    for worker in (first, second):
        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.wait() == 0, worker.output()


# -- d. SIGTERM ------------------------------------------------------------------------


async def test_sigterm_exits_0_within_the_grace_period_and_leaves_nothing_leased(
    world: World,
    worker_env: dict[str, str],
    spawn: Any,
    smtp_server: SlowSMTPServer,
) -> None:
    subscribers = 150
    idle = [f"idle{i:02d}" for i in range(30)]
    await star_session_waiting(world, subscribers, *idle)
    # Slow Chess.com and slow SMTP: both loops are busy when the signal comes.
    world.sim.latency_seconds = 0.25
    smtp_server.delay = 0.03
    world.sim.reset_requests()

    worker = await spawn({**worker_env, "POLL_CONCURRENCY": "2"})
    await wait_until(lambda: len(smtp_server.messages) >= 20, 30, "the first messages")
    signalled = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    rc = await worker.wait(timeout=GRACE_SECONDS + 10)
    took = time.monotonic() - signalled
    assert rc == 0, worker.output()
    assert took < GRACE_SECONDS + 1, f"stopped after {took:.1f}s"
    print(f"\nSIGTERM → exit 0 in {took:.2f}s")

    # Delivery: the batch in hand was finished; nothing is left leased.
    rows = await sql(
        world,
        "SELECT status, locked_until IS NOT NULL AS leased, count(*) AS n "
        "FROM notification_logs GROUP BY 1, 2 ORDER BY 1",
    )
    summary = {(r.status, r.leased): r.n for r in rows}
    assert not any(leased for _, leased in summary), summary
    sent = summary.get(("sent", False), 0)
    assert sent == len(smtp_server.messages), "every message sent was recorded"
    assert summary.get(("pending", False), 0) > 0, "stopped mid-delivery"

    # Polling: players claimed but never asked about were handed back (due now),
    # not left with the claim's lease of POLL_INTERVAL_SECONDS.
    asked = {r.path.split("/")[3] for r in world.sim.requests if "/player/" in r.path}
    assert all(r.status is not None for r in world.sim.requests), "in-flight polls finished"
    far = await sql(
        world,
        "SELECT username FROM players WHERE next_poll_at > now() + interval '5 seconds'",
    )
    assert {r.username for r in far} <= asked, "an unpolled player was left leased"
    assert len(asked) < len(idle) + 1, "stopped mid-cycle"

    # And the rest goes out exactly once.
    smtp_server.delay = 0.0
    world.sim.latency_seconds = 0.0
    await run_once(spawn, worker_env)
    got = per_message(smtp_server)
    assert len(got) == subscribers and set(got.values()) == {1}


# -- e. LISTEN/NOTIFY --------------------------------------------------------------


@pytest.mark.usefixtures("hikaru")
async def test_notify_wakes_the_sleeping_delivery_loop(
    client: httpx.AsyncClient,
    make_worker: WorkerFactory,
    smtp_server: SlowSMTPServer,
    clean_db: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        clean_db,
        tmp_path / "data",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
    )
    worker = make_worker(settings)
    # No poll of the outbox within the test: only a wake-up can deliver.
    worker.outbox_safety_poll = worker.outbox_fallback_poll = 3600.0
    task = asyncio.create_task(worker.run_forever())
    try:
        # The delivery loop asleep after the round the LISTEN connection woke it for.
        await wait_until(
            lambda: worker.listener.connected.is_set() and worker.delivery_idle.is_set(),
            60,
            "the delivery loop asleep, listening",
        )

        started = time.monotonic()
        r = await client.post(
            "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "hikaru"}
        )
        assert r.status_code == 202, r.text
        # The loop would sleep an hour: the email arriving at all proves NOTIFY woke it.
        [msg] = await smtp_server.wait_for(1, timeout=60)
        latency = time.monotonic() - started
    finally:
        worker.stop.set()
        await asyncio.wait_for(task, 10)
    print(f"\nsubscription → confirmation email at the SMTP server: {latency * 1000:.0f} ms")
    assert msg.rcpt_tos == ("fan@example.com",)


# -- f. bad settings ------------------------------------------------------------------


async def test_a_bad_setting_fails_with_one_line_naming_it(worker_env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        "--once",
        cwd=ROOT,
        env={**worker_env, "POLL_CONCURRENCY": "abc"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
    assert proc.returncode not in (0, None)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "POLL_CONCURRENCY" in lines[0]
    assert out == b""
