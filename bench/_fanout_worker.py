"""One fan-out as the worker does it, in a process of its own (for bench.fanout).

    python -m bench._fanout_worker DATABASE_URL SMTP_HOST SMTP_PORT CONNECTIONS PLAYER_ID

Records a live-session event and fans it out to the player's subscribers in one
transaction (timed), then drains the outbox with the worker's delivery (timed), and
prints one JSON line with both durations, the CPU time the drain took in this process
and the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

from sqlalchemy import text

from app.models import NotificationType
from app.notifications.outbox import fan_out, record_event
from app.notifications.payloads import GameRecord, live_session
from bench._common import make_settings
from worker.runner import Worker


def session_payload(now: int) -> object:
    games = [
        GameRecord(
            event_id=f"bench-game-{i}",
            url=f"https://www.chess.com/game/live/{98765432100 + i}",
            end_time=now - 600 + 300 * i,
            start_time=now - 900 + 300 * i,
            time_class="blitz",
            time_control="180+2",
            white="hikaru",
            black=opponent,
            white_rating=2800,
            black_rating=2790,
            white_result="win",
            black_result="resigned",
            rated=True,
        )
        for i, opponent in enumerate(("magnuscarlsen", "fabianocaruana"))
    ]
    return live_session("hikaru", "Hikaru Nakamura", now - 900, games)


async def main(url: str, host: str, port: int, connections: int, player_id: int) -> None:
    settings = make_settings(
        url,
        smtp_host=host,
        smtp_port=port,
        smtp_pool_size=connections,
        delivery_concurrency=connections,
        email_from="Chess.com Helper <alerts@bench.test>",
    )
    worker = Worker(settings)
    try:
        now = int(time.time())
        started = time.perf_counter()
        async with worker.session_factory() as session, session.begin():
            # What detection's transaction adds to the player's row update.
            await session.execute(
                text("SELECT 1 FROM players WHERE player_id = :p FOR UPDATE"), {"p": player_id}
            )
            event_id = await record_event(
                session,
                NotificationType.live_match,
                f"bench-session-{now}",
                session_payload(now),  # type: ignore[arg-type]
                player_id=player_id,
            )
            queued = await fan_out(session, event_id)
        fanned = time.perf_counter() - started
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
                "fanout_seconds": fanned,
                "drain_seconds": drained,
                "drain_cpu_seconds": drain_cpu,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )


if __name__ == "__main__":
    url, host, port, connections, player = sys.argv[1:6]
    asyncio.run(main(url, host, int(port), int(connections), int(player)))
