"""`python -m app` as a real process, the way `make run` and the container serve the API:
the one helper of the tests that need what only the real server shows."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from app.config import PROJECT_ROOT
from tests.fakes.processes import child_env, free_port


class Api:
    def __init__(self, proc: asyncio.subprocess.Process, base: str, log: Path) -> None:
        self.proc, self.base, self.log = proc, base, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@asynccontextmanager
async def api_process(
    database_url: str, chesscom_root: str, tmp_path: Path, **settings: str
) -> AsyncIterator[Api]:
    """`python -m app` on a free loopback port with rate limits on, once it answers
    /healthz; `settings` are more environment variables. SIGTERM (then a kill) at exit."""
    port = free_port()
    # Settings come from here only, never from the developer's shell.
    env = child_env(
        DATABASE_URL=database_url,
        CHESSCOM_API_BASE=f"{chesscom_root}/pub",
        CONTACT_EMAIL="ci@example.com",
        DATA_DIR=str(tmp_path / "data"),
        SECRET_KEY="api-process-test-secret-" + "m" * 32,
        PORT=str(port),
        RATE_LIMIT_ENABLED="true",
        **settings,
    )
    log = tmp_path / f"api-{port}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out
        )
    api = Api(proc, f"http://127.0.0.1:{port}", log)
    try:
        async with httpx.AsyncClient(base_url=api.base, timeout=5) as c:
            for _ in range(400):
                if proc.returncode is not None:
                    raise AssertionError(f"python -m app exited:\n{api.output()}")
                try:
                    if (await c.get("/api/v1/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"python -m app never answered:\n{api.output()}")
        yield api
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
