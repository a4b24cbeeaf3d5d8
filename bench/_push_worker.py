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
import json
import resource
import sys
import time

from app.models import NotificationType
from app.notifications.outbox import fan_out, record_event
from bench._common import make_settings
from bench._fanout_worker import session_payload
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
    worker = Worker(settings)
    try:
        now = int(time.time())
        async with worker.session_factory() as session, session.begin():
            event_id = await record_event(
                session,
                NotificationType.live_match,
                f"bench-push-session-{now}",
                session_payload(now),  # type: ignore[arg-type]
                player_id=player_id,
            )
            queued = await fan_out(session, event_id)
        started, cpu = time.perf_counter(), time.process_time()
        await worker.drain_outbox()
        drained, drain_cpu = time.perf_counter() - started, time.process_time() - cpu
        sent = worker.mail_tally["sent"]
    finally:
        await worker.aclose()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "queued": queued,
                "sent": sent,
                "seconds": drained,
                "cpu_seconds": drain_cpu,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )


if __name__ == "__main__":
    url, connections, player, key = sys.argv[1:5]
    asyncio.run(main(url, int(connections), int(player), key))
