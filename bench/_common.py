"""What the benchmarks share: a throw-away migrated database, settings, medians."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

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
        "data_dir": Path(tempfile.mkdtemp(prefix="chesshelper-bench-")),
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
