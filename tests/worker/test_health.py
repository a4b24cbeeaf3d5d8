"""The worker's /healthz and /metrics (issue 10 item 3): 200 only while both loops
completed a round recently and the database answers."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.config import Settings
from tests.worker.conftest import WorkerFactory
from worker.health import HealthServer

pytestmark = pytest.mark.usefixtures("clean_db")


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def test_healthz_follows_the_loops_and_metrics_are_served(
    make_worker: WorkerFactory,
) -> None:
    worker = make_worker()
    server = HealthServer("127.0.0.1", 0, asyncio.get_running_loop(), worker.health)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    task: asyncio.Task[None] | None = None
    try:
        r = await get(f"{base}/healthz")
        assert r.status_code == 503  # no loop has run yet
        assert r.json()["database"] == "ok"

        task = asyncio.create_task(worker.run_forever())
        deadline = time.monotonic() + 10
        # Healthy once both loops went round; LISTEN connects alongside (not a condition).
        while (r := await get(f"{base}/healthz")).status_code != 200 or (
            r.json()["listen"] != "connected"
        ):
            assert time.monotonic() < deadline, r.text
            await asyncio.sleep(0.05)

        metrics = (await get(f"{base}/metrics")).text
        for name in (
            "chesscom_helper_listen_connected 1.0",
            "chesscom_helper_outbox_pending",
            "chesscom_helper_outbox_oldest_due_age_seconds",
            "chesscom_helper_detection_to_delivery_seconds_bucket",
            "chesscom_helper_worker_loop_last_tick_timestamp_seconds",
        ):
            assert name in metrics, name

        worker.health_max_tick_age = 0.0  # as if both loops were stuck
        r = await get(f"{base}/healthz")
        assert r.status_code == 503
        assert r.json()["status"] == "unavailable"
    finally:
        worker.stop.set()
        if task is not None:
            await asyncio.wait_for(task, 10)
        await asyncio.to_thread(server.stop)


async def test_a_worker_started_without_its_database_waits_for_it(
    worker_settings: Settings, make_worker: WorkerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on this port: the database is "down" from the start.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = make_url(worker_settings.effective_database_url or "").set(port=port)
    settings = worker_settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False)}
    )
    worker = make_worker(settings)
    caplog.set_level(logging.DEBUG)
    task = asyncio.create_task(worker.run_forever())
    await asyncio.sleep(2.0)
    assert not task.done(), "an outage never kills the worker"
    healthy, details = await worker.health()
    assert not healthy and details["database"] == "unreachable"
    assert details["listen"] == "disconnected"
    worker.stop.set()
    await asyncio.wait_for(task, 10)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # One line per loop (each source's, delivery's) and one for LISTEN, however many
    # rounds failed; no traceback.
    loops = len(worker.sources) + 1
    assert 1 <= len(warnings) <= loops + 1, [r.getMessage() for r in warnings]
    assert not any(r.exc_info for r in warnings)
