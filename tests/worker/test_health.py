"""The worker's /healthz and /metrics (issue 10 item 3): 200 only while both loops
completed a round recently and the database answers."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

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
        while (r := await get(f"{base}/healthz")).status_code != 200:
            assert time.monotonic() < deadline, r.text
            await asyncio.sleep(0.05)
        assert r.json()["listen"] == "connected"

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
