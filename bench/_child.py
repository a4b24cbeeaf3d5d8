"""What the benchmarks' worker children share (bench._fanout_worker, ._push_worker,
._telegram_worker): a live session recorded and fanned out to the player's
subscribers in one transaction as detection does it (timed), the outbox drained by
the worker's own delivery (timed, with the CPU time it took in this process), and one
JSON line that ends with the process's peak RSS."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from app.models import NotificationType
from app.notifications.outbox import fan_out, record_event
from app.notifications.payloads import GameRecord, live_session
from bench._common import peak_rss_mb
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


@dataclass(frozen=True)
class Drained:
    queued: int
    sent: int
    fanout_seconds: float
    seconds: float  # the drain
    cpu_seconds: float  # the drain's, in this process


async def fan_out_and_drain(
    worker: Worker, player_id: int, key: str, *, lock_player: bool = False
) -> Drained:
    """Record a session of `player_id` (event key `key-<now>`), fan it out, drain; the
    worker is closed afterwards. `lock_player`: lock the player's row first, as
    detection's transaction does when it updates it."""
    try:
        now = int(time.time())
        started = time.perf_counter()
        async with worker.session_factory() as session, session.begin():
            if lock_player:
                await session.execute(
                    text("SELECT 1 FROM players WHERE player_id = :p FOR UPDATE"), {"p": player_id}
                )
            event_id = await record_event(
                session,
                NotificationType.live_match,
                f"{key}-{now}",
                session_payload(now),  # type: ignore[arg-type]
                player_id=player_id,
            )
            queued = await fan_out(session, event_id)
        fanned = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        await worker.drain_outbox()
        drained, drain_cpu = time.perf_counter() - started, time.process_time() - cpu
        return Drained(queued, worker.mail_tally["sent"], fanned, drained, drain_cpu)
    finally:
        await worker.aclose()


def print_result(**fields: Any) -> None:
    """One JSON line: `fields`, then `peak_rss_mb`."""
    print(json.dumps({**fields, "peak_rss_mb": peak_rss_mb()}))
