"""A real `python -m worker` killed with SIGKILL in the middle of webhook deliveries
(issue 13 item 3): nothing is lost, and a message whose answer never came back is
posted again under the same `webhook-id`, so every receiver sees each message once."""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from typing import Any

import pytest

from tests.fakes.webhooks import Reply, serve_receiver
from tests.worker.conftest import World
from tests.worker.test_processes import now, run_once, sql, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db")]

SUBSCRIBERS = 12


async def test_sigkill_mid_delivery_loses_nothing_and_repeats_only_under_the_same_id(
    world: World, worker_env: dict[str, str], spawn: Any
) -> None:
    env = {**worker_env, "WEBHOOK_ALLOW_PRIVATE": "true", "DELIVERY_LEASE_SECONDS": "2"}
    with serve_receiver() as receiver:
        await world.track("hikaru")
        world.sim.add_game("hikaru", end_time=now() - 7200)
        await run_once(spawn, env)  # baseline
        await sql(
            world,
            "INSERT INTO email_subscriptions (channel, webhook_url, webhook_format, "
            "webhook_secret, player_id, is_active, confirmed_at) "
            "SELECT 'webhook', :base || '/in/' || g, 'json', 'whsec_' || "
            "encode(sha256(g::text::bytea), 'base64'), p.player_id, true, now() "
            "FROM generate_series(1, :n) g, players p WHERE p.username = 'hikaru'",
            base=receiver.base_url,
            n=SUBSCRIBERS,
        )
        # Every answer takes a while, so the kill finds requests in flight.
        receiver.then(*[Reply(204, delay=1.5) for _ in range(SUBSCRIBERS)])
        world.sim.add_game("hikaru", end_time=now() - 60)
        await sql(world, "UPDATE players SET next_poll_at = now()")

        doomed = await spawn(env)
        await wait_until(lambda: len(receiver.requests) >= 2, 30, "requests in flight")
        doomed.proc.send_signal(signal.SIGKILL)
        assert await doomed.wait() == -signal.SIGKILL
        in_flight_at_kill = len(receiver.requests)
        receiver.script.clear()  # from now on, prompt answers

        await run_once(spawn, env)  # waits out the dead worker's leases, then delivers
        await asyncio.sleep(0.2)

    ids_per_path: dict[str, set[str]] = defaultdict(set)
    for request in receiver.requests:
        ids_per_path[request.path].add(request.headers["webhook-id"])
    assert sorted(ids_per_path) == sorted(f"/in/{i}" for i in range(1, SUBSCRIBERS + 1))
    assert all(len(ids) == 1 for ids in ids_per_path.values()), ids_per_path
    assert len(receiver.requests) <= SUBSCRIBERS + in_flight_at_kill
    rows = await sql(world, "SELECT status, count(*) AS n FROM notification_logs GROUP BY 1")
    assert [(r.status, r.n) for r in rows] == [("sent", SUBSCRIBERS)]
