"""`python -m app`, the way `make run` and the container serve the API, as a real process.

What only the real server shows: the client address the rate limiter sees (uvicorn
must not rewrite it from X-Forwarded-For), one log format for uvicorn's lines and
ours, and a clean exit on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.api_process import Api, api_process
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.server import run_asgi_in_thread

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]


@pytest.fixture
async def served(clean_db: str, tmp_path: Path) -> AsyncIterator[Api]:
    with run_asgi_in_thread(ChessComSimulator()) as sim_root:
        async with api_process(clean_db, sim_root, tmp_path) as api:
            yield api


async def test_invented_x_forwarded_for_buys_no_requests(served: Api) -> None:
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


async def test_one_log_format_and_a_clean_exit_on_sigterm(served: Api) -> None:
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
