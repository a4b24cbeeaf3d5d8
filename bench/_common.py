"""What the benchmarks share: a throw-away migrated database, settings, medians."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from app.config import Settings
from tests import db

SECRET_KEY = "bench-secret-key-" + "z" * 32


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is not set: run through scripts/with_db.sh")
    return url


@asynccontextmanager
async def scratch_database(label: str) -> AsyncIterator[str]:
    """A fresh database migrated to head, dropped afterwards whatever happens."""
    server = server_url()
    name = f"chesshelper_bench_{label}_{os.getpid()}"
    url = await db.recreate_database(server, name)
    try:
        await db.upgrade(url)
        yield url
    finally:
        await db.drop_database(server, name)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        # Nothing is written there (SECRET_KEY is set, SMTP or nothing is used).
        "data_dir": Path(tempfile.gettempdir()) / "chesshelper-bench",
        "secret_key": SECRET_KEY,
        "contact_email": "bench@example.com",
        "public_base_url": "http://bench.test",
        "rate_limit_enabled": False,
        "db_pool_size": 10,
        "db_max_overflow": 10,
    }
    values.update(overrides)
    return Settings(**values)


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return "  ".join(f"{v:.2f}" for v in values)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 from a thread; yields the base URL.

    Like tests.fakes.server.run_asgi_in_thread, except that the listening socket is
    created with proto=IPPROTO_TCP: asyncio turns Nagle off (TCP_NODELAY) only for such
    sockets, and with Nagle on every response written as headers + body waits for the
    client's delayed ACK, adding ~40 ms to each 200 (not to 304s), which would swamp
    the figures this benchmark is after.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="bench-asgi", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ASGI server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
