"""One Telegram fan-out as the worker does it, in a process of its own (for
bench.telegram_drain). Prints one JSON line: queued, sent, seconds, CPU, peak RSS.

    python -m bench._telegram_worker DATABASE_URL TELEGRAM_API_BASE TELEGRAM_BOT_TOKEN
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

PLAYER_ID = 15448422


async def main(url: str, base: str, token: str) -> None:
    settings = make_settings(url, telegram_api_base=base, telegram_bot_token=token)
    worker = Worker(settings)
    try:
        now = int(time.time())
        async with worker.session_factory() as session, session.begin():
            event_id = await record_event(
                session, NotificationType.live_match, f"bench-telegram-{now}",
                session_payload(now), player_id=PLAYER_ID,  # type: ignore[arg-type]
            )  # fmt: skip
            queued = await fan_out(session, event_id)
        started, cpu = time.perf_counter(), time.process_time()
        await worker.drain_outbox()
        seconds, used = time.perf_counter() - started, time.process_time() - cpu
        sent = worker.mail_tally["sent"]
    finally:
        await worker.aclose()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "queued": queued,
                "sent": sent,
                "seconds": seconds,
                "cpu_seconds": used,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
