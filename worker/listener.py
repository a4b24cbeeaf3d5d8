"""The LISTEN connection of the delivery loop, as a watched side task.

NOTIFY only wakes; polling the outbox guarantees (STYLE: procrastinate, pgqueuer). A
LISTEN connection that dies unseen is a silent slowdown (issue 10: after a PostgreSQL
restart every email waited for the safety poll), so this task owns the connection:
it notices a loss (termination callback, plus a periodic round trip for a peer that
vanished without closing the socket), reconnects with jittered backoff, and after
every (re)connection wakes delivery once, since a NOTIFY sent while nobody listened
is gone. State changes are logged once and counted; nothing is logged per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import asyncpg

from app.backoff import Backoff
from app.db import asyncpg_connect_args
from worker import metrics

log = logging.getLogger(__name__)

# Reconnection backoff: first retry quickly (a restart takes a second or two), never
# wait long (each attempt against a down server is one refused TCP connection).
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 1.0
# A round trip on an idle LISTEN connection this often finds a peer that went away
# without a FIN/RST (a network partition, a frozen VM).
KEEPALIVE_SECONDS = 15.0
KEEPALIVE_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5.0


class OutboxListener:
    """Keeps one LISTEN connection alive for as long as `run()` runs.

    `on_wake` is called on every NOTIFY, after each (re)connection and on each loss.
    `connected` tells the delivery loop whether it can rely on NOTIFY.
    """

    def __init__(self, url: str, channel: str, on_wake: Callable[[], None]) -> None:
        self._connect_args = asyncpg_connect_args(url)
        self.channel = channel
        self.on_wake = on_wake
        self.connection: asyncpg.Connection | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0
        metrics.LISTEN_CONNECTED.set(0)

    async def run(self, stop: asyncio.Event) -> None:
        # Jittered: after a database restart, many workers do not reconnect in lockstep.
        backoff = Backoff(BACKOFF_FIRST_SECONDS, BACKOFF_MAX_SECONDS, jitter=0.5)
        lost_at: float | None = None  # when the last connection was lost (or first tried)
        ever_connected = False
        failure: str | None = None
        while not stop.is_set():
            try:
                conn = await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if failure is None:
                    failure = _describe(exc)
                    log.warning(
                        "LISTEN connection unavailable (%s); delivery polls the outbox "
                        "until it is back",
                        failure,
                    )
                    lost_at = lost_at or time.monotonic()
                await _sleep_or_stop(stop, backoff.failed())
                continue
            backoff.succeeded()
            failure = None
            if ever_connected:
                self.reconnects += 1
                metrics.LISTEN_RECONNECTS.inc()
                down = time.monotonic() - lost_at if lost_at is not None else 0.0
                log.info("LISTEN connection re-established after %.1fs", down)
            ever_connected = True
            reason = await self._hold(conn, stop)
            lost_at = time.monotonic()
            if reason is not None:
                log.warning("LISTEN connection lost (%s); reconnecting", reason)

    async def _connect(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            **{**self._connect_args, "timeout": CONNECT_TIMEOUT_SECONDS}
        )
        try:
            await conn.add_listener(self.channel, self._notified)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _hold(self, conn: asyncpg.Connection, stop: asyncio.Event) -> str | None:
        """Serve one connection until it is lost (returns why) or we stop (None)."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        self.connection = conn
        self.connected.set()
        metrics.LISTEN_CONNECTED.set(1)
        # Anything enqueued while nobody listened would otherwise wait for the safety poll.
        self.on_wake()
        try:
            while not stop.is_set():
                if await _first(stop, lost, timeout=KEEPALIVE_SECONDS):
                    break
                if lost.is_set() or conn.is_closed():
                    return "connection closed"
                try:
                    await conn.execute("SELECT 1", timeout=KEEPALIVE_TIMEOUT_SECONDS)
                except Exception as exc:
                    return _describe(exc)
            return None if stop.is_set() else "connection closed"
        finally:
            self.connected.clear()
            self.connection = None
            metrics.LISTEN_CONNECTED.set(0)
            # Delivery switches to polling the outbox now, not after its current sleep.
            self.on_wake()
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()

    def _notified(self, *_: object) -> None:
        self.on_wake()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _first(stop: asyncio.Event, lost: asyncio.Event, *, timeout: float) -> bool:  # noqa: ASYNC109
    """Wait for `stop` or `lost` (or the timeout); True when stopping."""
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()
    return stop.is_set()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
