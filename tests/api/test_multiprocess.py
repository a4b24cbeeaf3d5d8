"""Several API processes (issue 11 §2): WEB_CONCURRENCY, and one rate-limit budget in Redis.

A real `redis-server` on loopback (Debian package `redis-server`; `.ci/run` installs
it). Outside CI a machine without it skips these tests with a message; in CI
(`CI=true`) a missing redis-server fails them.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app.config import Settings
from tests.fakes.api_process import api_process
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.processes import free_port
from tests.fakes.server import run_asgi_in_thread

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: .ci/run must install it")
        pytest.skip(message)
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if proc.poll() is not None:
                pytest.fail("redis-server exited at start")
            time.sleep(0.05)
        else:
            pytest.fail("redis-server never answered")
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def redis_url(redis_server: int) -> str:
    """The module's redis-server, emptied: every test starts with fresh budgets."""
    with redis.Redis(host="127.0.0.1", port=redis_server) as client:
        client.flushall()
    return f"redis://127.0.0.1:{redis_server}/0"


@pytest.fixture(scope="module")
def chesscom_root() -> Iterator[str]:
    with run_asgi_in_thread(ChessComSimulator()) as root:
        yield root


async def erase_request(base: str) -> int:
    # A new connection each time: with several processes behind one socket, any of
    # them may answer.
    async with httpx.AsyncClient(base_url=base, timeout=5) as c:
        r = await c.post("/api/v1/subscribers/erase-request", json={"email": "a@example.com"})
        return r.status_code


async def test_two_api_processes_share_one_budget_through_redis(
    clean_db: str, chesscom_root: str, redis_url: str, tmp_path: Path
) -> None:
    async with (
        api_process(clean_db, chesscom_root, tmp_path, RATE_LIMIT_STORAGE_URI=redis_url) as a,
        api_process(clean_db, chesscom_root, tmp_path, RATE_LIMIT_STORAGE_URI=redis_url) as b,
    ):
        # 5/minute per client address, whichever process answers.
        statuses = [await erase_request(api.base) for api in (a, b, a, b, a, b, a)]
    assert statuses == [202] * 5 + [429, 429]


async def test_with_memory_storage_each_process_counts_alone(
    clean_db: str, chesscom_root: str, tmp_path: Path
) -> None:
    """The control: what Redis storage fixes (and proof the test above can fail)."""
    async with (
        api_process(clean_db, chesscom_root, tmp_path) as a,
        api_process(clean_db, chesscom_root, tmp_path) as b,
    ):
        statuses = [await erase_request(api.base) for api in (a, b, a, b, a, b, a)]
    assert statuses == [202] * 7


def server_pids(output: str) -> set[str]:
    return set(re.findall(r"Started server process \[(\d+)\]", output))


async def test_web_concurrency_runs_that_many_processes_on_one_port(
    clean_db: str, chesscom_root: str, redis_url: str, tmp_path: Path
) -> None:
    async with api_process(
        clean_db,
        chesscom_root,
        tmp_path,
        WEB_CONCURRENCY="2",
        RATE_LIMIT_STORAGE_URI=redis_url,
    ) as api:
        # The parent answers once its first child does; on a loaded machine the second
        # child is still starting then. Both must serve before the budget is spent.
        for _ in range(600):
            if api.output().count("Application startup complete") >= 2:
                break
            await asyncio.sleep(0.05)
        statuses = [await erase_request(api.base) for _ in range(7)]
        output = api.output()
        pids = server_pids(output)
        assert len(pids) == 2, output
        # Each process logs in the app's one format, like the parent.
        for line in filter(str.strip, output.splitlines()):
            assert line[:4].isdigit() and "Z [" in line[:40], line
        assert statuses == [202] * 5 + [429, 429]
        api.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(api.proc.wait(), 20) in (0, -signal.SIGTERM)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


def test_web_concurrency_must_be_a_positive_count() -> None:
    from pydantic import ValidationError

    from app.config import format_settings_error

    with pytest.raises(ValidationError) as caught:
        Settings(database_url="postgresql+asyncpg://u@h/db", web_concurrency=0)
    assert format_settings_error(caught.value).startswith("invalid configuration: WEB_CONCURRENCY:")
