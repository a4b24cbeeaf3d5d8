"""Fault tests with real processes (issue 10): `python -m app` and `python -m worker`
as children, the Chess.com simulator and the SMTP fake on real loopback ports, and,
where PostgreSQL itself must fail, a scratch cluster of the test's own (the shared
test server stays up for everyone else).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.db import FAST_PG_OPTS
from tests.fakes.processes import child_env, free_port

ROOT = Path(__file__).resolve().parents[2]
LOCALDB = ROOT / "scripts" / "localdb.sh"


class ScratchCluster:
    """A PostgreSQL cluster of one test module (scripts/localdb.sh with its own DATA_DIR
    and port), which a test may stop and start."""

    def __init__(self) -> None:
        # Under .data/: the checkout's cluster lives there, so the server's user (when
        # the tests run as root) can reach it.
        self.data_dir = ROOT / ".data" / f"scratch-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATA_DIR": str(self.data_dir),
            "LOCAL_PG_PORT": str(self.port),
            "LOCAL_PG_DB": "faults",
            "LOCAL_PG_OPTS": FAST_PG_OPTS,
        }
        self.url = ""

    def _run(self, command: str) -> str:
        out = subprocess.run(
            [str(LOCALDB), command], env=self.env, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def start(self) -> str:
        self.url = self._run("start").splitlines()[-1]
        return self.url

    def stop(self) -> None:
        self._run("stop")

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def scratch_cluster() -> Iterator[ScratchCluster]:
    cluster = ScratchCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


class Child:
    """One child process; its output goes to a file (no pipe to fill up)."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, module: str, env: dict[str, str], log: Path, *args: str) -> Child:
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", module, *args, cwd=ROOT, env=env, stdout=out, stderr=out
            )
        return cls(proc, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode


@pytest.fixture
async def children(tmp_path: Path) -> Any:
    """start(module, env, *args) -> Child; every child is stopped after the test."""
    started: list[Child] = []

    async def start(module: str, env: dict[str, str], *args: str) -> Child:
        child = await Child.start(module, env, tmp_path / f"{module}-{len(started)}.log", *args)
        started.append(child)
        return child

    yield start
    for child in started:
        await child.stop()


async def wait_until(
    predicate: Callable[[], Any],
    timeout: float,  # noqa: ASYNC109
    what: str,
    interval: float = 0.01,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def status_of(url: str) -> int | None:
    """The HTTP status of GET url, or None when nothing answers."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(url)).status_code
    except httpx.HTTPError:
        return None


async def metric(base: str, name: str) -> float:
    """The value of one unlabelled sample (or the sum over labels) on a /metrics page."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{base}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def app_env(
    database_url: str,
    sim_root: str,
    smtp_host: str,
    smtp_port: int,
    data_dir: Path,
    **extra: str,
) -> dict[str, str]:
    """What the API and the worker children share: this database, the simulator, the
    SMTP fake; quick polls and retries so faults play out in seconds."""
    return child_env(
        LOG_LEVEL="INFO",
        DATABASE_URL=database_url,
        CHESSCOM_API_BASE=f"{sim_root}/pub",
        CONTACT_EMAIL="ci@example.com",
        CHESSCOM_TIMEOUT_SECONDS="5",
        SMTP_HOST=smtp_host,
        SMTP_PORT=str(smtp_port),
        EMAIL_FROM="Chess.com Helper <alerts@helper.test>",
        SECRET_KEY="fault-test-secret-key-" + "z" * 32,
        DATA_DIR=str(data_dir),
        RATE_LIMIT_ENABLED="false",
        POLL_INTERVAL_SECONDS="1",
        LICHESS_REQUESTS_PER_SECOND="100",  # as tests.conftest.make_settings says
        DB_POOL_SIZE="3",
        DB_MAX_OVERFLOW="3",
        SHUTDOWN_GRACE_SECONDS="3",
        **extra,
    )
