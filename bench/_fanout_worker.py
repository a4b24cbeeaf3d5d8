"""One fan-out as the worker does it, in a process of its own (for bench.fanout).

    python -m bench._fanout_worker DATABASE_URL SMTP_HOST SMTP_PORT CONNECTIONS PLAYER_ID

Records a live-session event and fans it out to the player's subscribers in one
transaction (timed), then drains the outbox with the worker's delivery (timed), and
prints one JSON line with both durations, the CPU time the drain took in this process
and the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import sys

from bench._child import fan_out_and_drain, print_result
from bench._common import make_settings
from worker.runner import Worker


async def main(url: str, host: str, port: int, connections: int, player_id: int) -> None:
    settings = make_settings(
        url,
        smtp_host=host,
        smtp_port=port,
        smtp_pool_size=connections,
        delivery_concurrency=connections,
        email_from="Chess.com Helper <alerts@bench.test>",
    )
    # What detection's transaction adds to the player's row update: its lock.
    run = await fan_out_and_drain(Worker(settings), player_id, "bench-session", lock_player=True)
    print_result(
        queued=run.queued,
        sent=run.sent,
        fanout_seconds=run.fanout_seconds,
        drain_seconds=run.seconds,
        drain_cpu_seconds=run.cpu_seconds,
    )


if __name__ == "__main__":
    url, host, port, connections, player = sys.argv[1:6]
    asyncio.run(main(url, host, int(port), int(connections), int(player)))
