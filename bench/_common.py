"""What the benchmarks share: a throw-away migrated database, settings, medians, and the
threaded ASGI server of the tests (`serve_asgi`)."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path
from typing import Any

from app.config import Settings
from tests import db
from tests.fakes.server import run_asgi_in_thread

SECRET_KEY = "bench-secret-key-" + "z" * 32


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is not set: run through scripts/with_db.sh")
    return url


def scratch_database(label: str) -> AbstractAsyncContextManager[str]:
    """A fresh database migrated to head, dropped afterwards whatever happens."""
    return db.scratch_database(
        server_url(), f"chesshelper_bench_{label}_{os.getpid()}", migrate=True
    )


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


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM, MB). Not ``ru_maxrss``: Linux carries that
    across exec from the process that started us, so a child of a benchmark holding
    100,000 subscriptions reported the parent's size (212 MB) as its own (115 MB)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return "  ".join(f"{v:.2f}" for v in values)


# The simulator needs no lifespan; the socket has TCP_NODELAY, so a 200 does not wait ~40 ms
# for the client's delayed ACK (which would swamp the figures).
serve_asgi = partial(run_asgi_in_thread, lifespan="off")
