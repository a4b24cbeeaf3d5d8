"""Faults outside our database, with a real `python -m worker` (issue 10 item 5):
the SMTP server dropping the connection mid-DATA, the SMTP server down, and Chess.com
answering 5xx to 30 % of requests for a while."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.smtp import Envelope, Session
from starlette.types import Receive, Scope, Send

from tests import db
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.processes import free_port
from tests.fakes.server import run_asgi_in_thread
from tests.fakes.smtp import SMTPServerFake, _Handler
from tests.faults.conftest import Child, app_env, metric, status_of, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]

# SMTP down for "a minute" (issue 10) is shortened to this. The behaviour does not
# depend on the length: while the server is unreachable a row is postponed without
# counting an attempt (asserted below: attempts stay 0), so a 60 s or 6 h outage
# fails no row either; only the probe interval grows (1 s doubling to 5 s).
SMTP_OUTAGE_SECONDS = 6.0
FLAKY_SECONDS = 6.0


# -- fakes ------------------------------------------------------------------------------


class _DroppingHandler(_Handler):
    fake: FaultySMTPServer

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.fake.take_drop():
            # The whole message came in; the connection dies before the reply: the
            # client cannot know, and the server did not keep it.
            server.transport.close()
            return "421 4.4.2 connection dropped"
        return await super().handle_DATA(server, session, envelope)


class FaultySMTPServer(SMTPServerFake):
    """The SMTP fake, which can also drop the connection mid-DATA."""

    drops = 0

    def take_drop(self) -> bool:
        with self._lock:
            if self.drops > 0:
                self.drops -= 1
                return True
            return False

    def start(self) -> None:
        super().start()
        assert self._controller is not None
        self._controller.handler = _DroppingHandler(self)


class FlakyChessCom:
    """The simulator behind a gate that answers 503 to `fraction` of requests while
    `active`, and remembers when each player last got a real answer."""

    def __init__(self, sim: ChessComSimulator, fraction: float, seed: int = 10) -> None:
        self.sim = sim
        self.fraction = fraction
        self.active = False
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.answered: dict[str, list[float]] = {}
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope.get("path", "").split("/")
        player = parts[3].lower() if len(parts) > 3 and parts[2] == "player" else None
        with self._lock:
            refuse = self.active and self._random.random() < self.fraction
            if refuse:
                self.refused += 1
        if refuse:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"upstream trouble"})
            return
        await self.sim(scope, receive, send)
        if player is not None:
            with self._lock:
                self.answered.setdefault(player, []).append(time.monotonic())


# -- the world --------------------------------------------------------------------------


@dataclass
class Rig:
    url: str
    sim: ChessComSimulator
    gate: FlakyChessCom
    smtp: FaultySMTPServer
    env: dict[str, str]
    health: str

    async def sql(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(db.asyncpg_dsn(self.url))
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    async def track(self, username: str, subscribers: int) -> None:
        data = self.sim.add_player(username)
        # A game an hour ago: the player counts as active, polled every
        # POLL_INTERVAL_SECONDS (1 s) instead of four times slower.
        self.sim.add_game(username, end_time=int(time.time()) - 3600)
        await self.sql(
            "INSERT INTO players (player_id, username, url) VALUES ($1, $2, $3)",
            data["player_id"],
            username.lower(),
            data["url"],
        )
        await self.sql(
            "INSERT INTO email_subscriptions (email, player_id, is_active, confirmed_at) "
            "SELECT 'fan' || g || '.' || $1 || '@example.com', $2, true, now() "
            "FROM generate_series(1, $3) g",
            username.lower(),
            data["player_id"],
            subscribers,
        )

    async def baselines_done(self, n: int) -> None:
        async def done() -> bool:
            rows = await self.sql(
                "SELECT count(*) AS n FROM players WHERE detection_state ? 'baseline_done'"
            )
            return bool(rows[0]["n"] >= n)

        await wait_until(done, 30, "the baseline polls", interval=0.1)

    def per_recipient(self) -> Counter[str]:
        return Counter(r for m in self.smtp.messages for r in m.rcpt_tos)

    async def statuses(self) -> list[tuple[str, int, int]]:
        rows = await self.sql(
            "SELECT status, count(*) AS n, sum(attempts) AS attempts FROM notification_logs "
            "GROUP BY 1 ORDER BY 1"
        )
        return [(r["status"], r["n"], r["attempts"]) for r in rows]


@pytest.fixture
def rig_parts() -> Iterator[tuple[ChessComSimulator, FlakyChessCom, str, FaultySMTPServer]]:
    sim = ChessComSimulator()
    gate = FlakyChessCom(sim, fraction=0.3)
    smtp = FaultySMTPServer()
    with run_asgi_in_thread(gate) as root, smtp:
        yield sim, gate, root, smtp


@pytest.fixture
async def rig(
    clean_db: str,
    rig_parts: tuple[ChessComSimulator, FlakyChessCom, str, FaultySMTPServer],
    tmp_path: Path,
) -> AsyncIterator[Rig]:
    sim, gate, root, smtp = rig_parts
    port = free_port()
    env = app_env(
        clean_db,
        root,
        smtp.host,
        smtp.port,
        tmp_path / "data",
        WORKER_METRICS_PORT=str(port),
        DELIVERY_RETRY_BASE_SECONDS="0.2",
        CHESSCOM_REQUESTS_PER_SECOND="200",
    )
    yield Rig(clean_db, sim, gate, smtp, env, f"http://127.0.0.1:{port}")


async def start_worker(rig: Rig, children: Any) -> Child:
    worker: Child = await children("worker", rig.env)
    await wait_until(lambda: _ok(f"{rig.health}/healthz"), 30, "the worker's health")
    return worker


async def _ok(url: str) -> bool:
    return await status_of(url) == 200


def assert_calm(worker: Child) -> None:
    """Still running, and no traceback in its log."""
    assert worker.proc.returncode is None, worker.output()[-3000:]
    assert "Traceback" not in worker.output(), worker.output()[-3000:]


# -- the tests --------------------------------------------------------------------------


async def test_smtp_drops_the_connection_mid_data_retried_and_delivered_once(
    rig: Rig, children: Any
) -> None:
    await rig.track("hikaru", subscribers=3)
    worker = await start_worker(rig, children)
    await rig.baselines_done(1)

    rig.smtp.drops = 2
    rig.sim.add_game("hikaru", end_time=int(time.time()) - 30)
    await wait_until(lambda: len(rig.per_recipient()) == 3, 20, "three recipients served")
    await asyncio.sleep(1.0)  # room for a duplicate to arrive, if one were coming

    assert rig.smtp.drops == 0, "both drops happened"
    assert set(rig.per_recipient().values()) == {1}, rig.per_recipient()
    # Three rows sent; the two dropped transactions cost one more attempt each.
    assert await rig.statuses() == [("sent", 3, 5)]
    retries = await _labelled(rig.health, "chesscom_helper_emails_total", 'result="retry"')
    assert retries == 2
    # Each delivered session email is measured from its game's end (30 s before).
    delivered = await metric(rig.health, "chesscom_helper_detection_to_delivery_seconds_count")
    assert delivered == 3
    total = await metric(rig.health, "chesscom_helper_detection_to_delivery_seconds_sum")
    assert 3 * 30 <= total < 3 * 60, total
    assert_calm(worker)


async def test_smtp_down_rows_wait_and_all_go_out_once_it_is_back(rig: Rig, children: Any) -> None:
    await rig.track("hikaru", subscribers=5)
    worker = await start_worker(rig, children)
    await rig.baselines_done(1)

    rig.smtp.stop()
    down_at = time.monotonic()
    rig.sim.add_game("hikaru", end_time=int(time.time()) - 30)

    async def tried() -> bool:
        rows = await rig.sql(
            "SELECT count(*) AS n FROM notification_logs WHERE error_message LIKE '%unreachable%'"
        )
        return bool(rows[0]["n"] == 5)

    await wait_until(tried, 15, "delivery to find the SMTP server down", interval=0.1)
    await asyncio.sleep(max(0.0, SMTP_OUTAGE_SECONDS - (time.monotonic() - down_at)))

    # Rows wait: pending, and no attempt counted against them however long it lasts.
    # A row the probe holds counts its attempt until the postponement is recorded, so
    # look until no row is mid-probe.
    async def waiting_uncounted() -> bool:
        return await rig.statuses() == [("pending", 5, 0)]

    await wait_until(waiting_uncounted, 5, "rows pending with no attempt counted", interval=0.05)

    async def gauge_shows_them() -> bool:
        return await metric(rig.health, "chesscom_helper_outbox_pending") == 5

    await wait_until(gauge_shows_them, 10, "the outbox gauge", interval=0.2)
    assert await _ok(f"{rig.health}/healthz"), "an SMTP outage is not a sick worker"

    rig.smtp.start()  # the same port, like a rebooted relay
    back_at = time.monotonic()
    await wait_until(lambda: len(rig.per_recipient()) == 5, 20, "every email after the outage")
    took = time.monotonic() - back_at
    await asyncio.sleep(1.0)
    print(f"\nSMTP down {SMTP_OUTAGE_SECONDS:.0f}s; all 5 emails out {took:.2f}s after it was back")
    assert set(rig.per_recipient().values()) == {1}
    assert await rig.statuses() == [("sent", 5, 5)]
    assert "SMTP server reachable again" in worker.output()
    assert_calm(worker)


async def test_chesscom_5xx_to_30_percent_every_player_still_polled(
    rig: Rig, children: Any
) -> None:
    players = [f"player{i:02d}" for i in range(12)]
    for name in players:
        await rig.track(name, subscribers=1)
    worker = await start_worker(rig, children)
    await rig.baselines_done(len(players))

    rig.gate.active = True
    started = time.monotonic()
    playing = players[:4]
    for name in playing:  # sessions that end while Chess.com is flaky
        rig.sim.add_game(name, end_time=int(time.time()) - 30)
    await asyncio.sleep(FLAKY_SECONDS)
    rig.gate.active = False
    ended = time.monotonic()

    # Every player got real answers while 30 % of requests failed.
    for name in players:
        during = [t for t in rig.gate.answered.get(name, []) if started <= t <= ended]
        assert during, f"{name} was not polled successfully during the faults"
    assert rig.gate.refused >= 5, rig.gate.refused
    # The sessions are notified, each once.
    expected = {f"fan1.{name}@example.com" for name in playing}
    await wait_until(lambda: set(rig.per_recipient()) >= expected, 20, "the live-match emails")
    await asyncio.sleep(1.0)
    assert rig.per_recipient() == Counter(dict.fromkeys(expected, 1))
    # The backoff is visible: failed requests were counted (and retried).
    unavailable = await metric(rig.health, "chesscom_helper_chesscom_unavailable_total")
    print(f"\n{rig.gate.refused} requests refused with 503; counted: {unavailable:.0f}")
    assert unavailable >= rig.gate.refused * 0.9
    assert await _ok(f"{rig.health}/healthz")
    assert_calm(worker)


async def _labelled(base: str, name: str, label: str) -> float:
    """The sum of samples of `name` whose labels contain `label`."""
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{base}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and label in line
    )
