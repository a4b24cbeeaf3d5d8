"""One push fan-out as the worker does it, in a process of its own (for bench.push_fanout).

    python -m bench._push_worker DATABASE_URL CONNECTIONS PLAYER_ID VAPID_PRIVATE_KEY

Records a live-session event and fans it out to the player's push subscribers in one
transaction, then drains the outbox with the worker's delivery (the push channel:
render, encrypt per browser, VAPID, post over the webhook sender's pinned connections)
and prints one JSON line: rows queued and sent, the drain's seconds and CPU seconds,
and the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import sys

from bench._child import fan_out_and_drain, print_result
from bench._common import make_settings
from worker.runner import Worker


async def main(url: str, connections: int, player_id: int, key: str) -> None:
    settings = make_settings(
        url,
        webhook_allow_private=True,  # the push service listens on loopback
        webhook_per_host_concurrency=connections,
        delivery_concurrency=connections,
        vapid_private_key=key,
        vapid_subject="mailto:bench@example.com",
    )
    run = await fan_out_and_drain(Worker(settings), player_id, "bench-push-session")
    print_result(queued=run.queued, sent=run.sent, seconds=run.seconds, cpu_seconds=run.cpu_seconds)


if __name__ == "__main__":
    url, connections, player, key = sys.argv[1:5]
    asyncio.run(main(url, int(connections), int(player), key))
