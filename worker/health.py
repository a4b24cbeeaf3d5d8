"""How the worker knows and tells that it works: loop liveness, one log line per change
of state, and the HTTP endpoint (`/healthz`, `/metrics`) on WORKER_METRICS_PORT.

The endpoint runs in a thread (prometheus_client's own WSGI exposition plus one route),
so a scrape never competes with the worker's event loop; `/healthz` asks the loop to
check the database, which also proves the loop is not stuck.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socketserver
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import asyncpg
from prometheus_client import make_wsgi_app
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker import metrics

log = logging.getLogger(__name__)

HEALTH_CHECK_TIMEOUT_SECONDS = 4.0

_CONNECTIVITY_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, ConnectionError
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # incl. ConnectionDoesNotExistError
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    sa_exc.DisconnectionError,
)


def is_connectivity_error(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says a server could not be reached: an outage
    to wait out, not a bug worth a traceback."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _CONNECTIVITY_ERRORS):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def describe(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


class LoopState:
    """One loop's liveness: when it last completed a round, and whether it is failing.

    `failed()` logs once when a loop starts failing (with a traceback only for what is
    not an outage) and `ok()` once when it recovers: one line per change of state.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_ok: float | None = None  # time.monotonic()
        self.failing_since: float | None = None

    def ok(self) -> None:
        self.last_ok = time.monotonic()
        metrics.LOOP_LAST_TICK.labels(self.name).set(time.time())
        if self.failing_since is not None:
            log.info(
                "%s loop recovered after %.1fs", self.name, time.monotonic() - self.failing_since
            )
            self.failing_since = None

    def failed(self, exc: BaseException) -> None:
        metrics.LOOP_ERRORS.labels(self.name).inc()
        if self.failing_since is not None:
            log.debug("%s loop still failing: %s", self.name, describe(exc))
            return
        self.failing_since = time.monotonic()
        outage = is_connectivity_error(exc)
        log.warning(
            "%s loop failing (%s); retrying until it recovers",
            self.name,
            describe(exc),
            exc_info=None if outage else exc,
        )

    def age(self) -> float | None:
        return None if self.last_ok is None else time.monotonic() - self.last_ok


async def check_health(
    engine: AsyncEngine,
    loops: Sequence[LoopState],
    *,
    max_tick_age: float,
    listen_connected: bool,
) -> tuple[bool, dict[str, Any]]:
    """Healthy: every loop completed a round within `max_tick_age` seconds and the
    database answers a query. Details say which part is not."""
    try:
        async with engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), 3.0)
        database = "ok"
    except Exception as exc:
        database = "unreachable"
        log.debug("health check: database unreachable: %s", describe(exc))
    metrics.DATABASE_UP.set(1 if database == "ok" else 0)
    ages: dict[str, float | None] = {}
    fresh = True
    for state in loops:
        age = state.age()
        ages[state.name] = None if age is None else round(age, 1)
        fresh = fresh and age is not None and age <= max_tick_age
    healthy = fresh and database == "ok"
    return healthy, {
        "status": "ok" if healthy else "unavailable",
        "database": database,
        "loops_last_round_seconds_ago": ages,
        "listen": "connected" if listen_connected else "disconnected",
    }


# -- the HTTP endpoint ------------------------------------------------------------------


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class HealthServer:
    """`/healthz` (200 or 503 with a JSON body) and `/metrics` on host:port, in a thread.

    `check` is a coroutine function run on `loop`; it returns (healthy, details).
    """

    def __init__(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop,
        check: Callable[[], Coroutine[Any, Any, tuple[bool, dict[str, Any]]]],
    ) -> None:
        self.loop = loop
        self.check = check
        self._metrics_app: WSGIApp = make_wsgi_app()
        self._server = make_server(
            host, port, self._app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="worker-health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            healthy, details = self._health()
            body = json.dumps(details).encode()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(
                status,
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self._metrics_app(environ, start_response)

    def _health(self) -> tuple[bool, dict[str, Any]]:
        future = asyncio.run_coroutine_threadsafe(self.check(), self.loop)
        try:
            return future.result(timeout=HEALTH_CHECK_TIMEOUT_SECONDS + 1)
        except (FutureTimeout, RuntimeError):
            future.cancel()
            return False, {"status": "unavailable", "event_loop": "unresponsive"}
        except Exception as exc:  # a failing check is an unhealthy worker, not a 500
            return False, {"status": "unavailable", "error": describe(exc)}
