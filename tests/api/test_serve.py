"""`python -m app`, the way `make run` and the container serve the API, as a real process.

What only the real server shows: the client address the rate limiter sees (uvicorn
must not rewrite it from X-Forwarded-For), one log format for uvicorn's lines and
ours, and a clean exit on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.server import run_asgi_in_thread

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]

ROOT = Path(__file__).resolve().parents[2]
_SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, base: str, log: Path) -> None:
        self.proc, self.base, self.log = proc, base, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def served(clean_db: str, tmp_path: Path) -> AsyncIterator[Served]:
    sim = ChessComSimulator()
    with run_asgi_in_thread(sim) as sim_root:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTING_NAMES}
        env.update(
            DATABASE_URL=clean_db,
            CHESSCOM_API_BASE=f"{sim_root}/pub",
            CONTACT_EMAIL="ci@example.com",
            DATA_DIR=str(tmp_path / "data"),
            SECRET_KEY="serve-test-secret-key-" + "s" * 32,
            PORT=str(port),
            RATE_LIMIT_ENABLED="true",
            PYTHONUNBUFFERED="1",
        )
        log = tmp_path / "api.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app", cwd=ROOT, env=env, stdout=out, stderr=out
            )
        served = Served(proc, f"http://127.0.0.1:{port}", log)
        try:
            async with httpx.AsyncClient(base_url=served.base, timeout=5) as c:
                for _ in range(300):
                    if proc.returncode is not None:
                        raise AssertionError(f"python -m app exited:\n{served.output()}")
                    try:
                        if (await c.get("/api/v1/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"python -m app never answered:\n{served.output()}")
            yield served
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_invented_x_forwarded_for_buys_no_requests(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=5) as c:
        statuses = [
            (
                await c.post(
                    "/api/v1/subscribers/erase-request",
                    json={"email": "someone@example.com"},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                )
            ).status_code
            for i in range(6)
        ]
    # Without TRUSTED_PROXIES every request is the peer's own (127.0.0.1).
    assert statuses == [202] * 5 + [429]


async def test_one_log_format_and_a_clean_exit_on_sigterm(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=5) as c:
        r = await c.get("/api/v1/readyz")
    assert r.status_code == 200
    assert "server" not in r.headers  # no version banner

    served.proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal so that the exit status
    # says what stopped it (143 from a shell, as for any process stopped by SIGTERM).
    assert await asyncio.wait_for(served.proc.wait(), 15) in (0, -signal.SIGTERM)
    lines = [line for line in served.output().splitlines() if line.strip()]
    assert any("Application shutdown complete" in line for line in lines)
    assert any("Started server process" in line for line in lines)
    assert any('"GET /api/v1/readyz HTTP/1.1" 200' in line for line in lines)
    # uvicorn's lines come through the app's structlog handler, like every other line:
    # ISO timestamp first, then the level in brackets.
    for line in lines:
        assert line[:4].isdigit() and "Z [" in line[:40], line
        assert "color_message" not in line and "\x1b" not in line, line
