"""Chess.com stream alert delay (issue 19 item 6): from a stream going live in the
simulator's `/pub/streamers` to its outbox rows.

10,000 tracked Chess.com players (one confirmed subscriber each), 1,000 of them
Chess.com streamers; after the baseline read, streams start at random (and end after
a few minutes) for `--seconds`. Only the streamer-list source runs (the archive
polling is untouched by it: the list costs one request per period, counted in the
Chess.com budget). Delay = outbox row written - the simulator's stream start.

    scripts/with_db.sh .venv/bin/python -m bench.stream_alerts [--period 20]

Prints the streams, the alerts, delay p50 / p95 / max against 2 x STREAMERS_POLL_SECONDS,
and the requests the list cost per period.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import threading
import time

import asyncpg

from bench._common import make_settings, scratch_database, serve_asgi
from bench.lichess_alerts import percentile
from tests import db
from tests.fakes.chesscom import ChessComSimulator
from worker.runner import Worker
from worker.sources.chesscom_streamers import StreamersSource


async def seed(url: str, players: int) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, username) "
            "SELECT 1000 + i, 'c' || lpad(i::text, 5, '0') FROM generate_series(0, $1 - 1) AS i",
            players,
        )
        await conn.execute(
            "INSERT INTO email_subscriptions (email, player_id, confirmed_at) "
            "SELECT 'fan' || player_id || '@example.com', player_id, now() FROM players"
        )
    finally:
        await conn.close()


async def outbox(url: str) -> dict[str, float]:
    """Username → when its first stream alert's outbox row was written."""
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT e.payload->>'username' AS name, min(extract(epoch FROM n.created_at))::float8 "
            "AS at FROM notification_logs n JOIN events e ON e.id = n.event_id "
            "WHERE e.kind = 'stream_started' GROUP BY 1"
        )
        return {r["name"]: r["at"] for r in rows}
    finally:
        await conn.close()


def drive(sim: ChessComSimulator, streamers: list[str], rate: float, stop: threading.Event) -> None:
    """Each streamer goes live at most once (the alert is matched by username)."""
    rng = random.Random(11)
    idle = list(streamers)
    rng.shuffle(idle)
    while idle and not stop.is_set():
        time.sleep(rng.expovariate(rate))
        sim.start_stream(idle.pop(), rng.choice(("twitch", "youtube", "kick")))


async def run(players: int, streamers: int, period: float, seconds: float, rate: float) -> None:
    sim = ChessComSimulator()
    names = [f"c{i:05d}" for i in range(players)]
    chosen = names[:: players // streamers][:streamers]
    for name in chosen:
        sim.set_streamer(name, platforms=[])
    async with scratch_database("streams") as url:
        await seed(url, players)
        with serve_asgi(sim) as root:
            settings = make_settings(
                url, chesscom_api_base=f"{root}/pub", streamers_poll_seconds=period
            )
            worker = Worker(settings)
            source = next(s for s in worker.sources if isinstance(s, StreamersSource))
            try:
                await source.step()  # the baseline read
                stop = threading.Event()
                driver = threading.Thread(target=drive, args=(sim, chosen, rate, stop))
                loop = asyncio.create_task(worker.source_loop(source))
                began = time.time()
                driver.start()
                await asyncio.sleep(seconds)
                stop.set()
                driver.join()
                await asyncio.sleep(period + 2)  # the tail
                worker.stop.set()
                await loop
                ended = time.time()
            finally:
                await worker.aclose()
            rows = await outbox(url)
    starts = {name: times[0] for name, times in sim.stream_starts.items()}
    delays = [rows[n] - t for n, t in starts.items() if n in rows]
    reads = [r for r in sim.requests if r.path == "/pub/streamers"]
    print(
        f"stream_alerts: {players} players, {streamers} streamers, STREAMERS_POLL_SECONDS="
        f"{period:g}, streams starting for {seconds:g} s at {rate:g}/s"
    )
    print(
        f"  streams {len(starts)}, alerts {len(delays)}, missed {len(starts) - len(delays)}; "
        f"delay p50 {percentile(delays, 0.5):.1f} s, p95 {percentile(delays, 0.95):.1f} s, "
        f"max {max(delays, default=float('nan')):.1f} s (target p95 <= {2 * period:g} s)"
    )
    statuses = sorted({r.status for r in reads}, key=str)
    print(
        f"  /pub/streamers requests: {len(reads)} in {ended - began + period:.0f} s "
        f"({len(reads) / ((ended - began) / period + 1):.2f} per period; statuses {statuses})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_alerts")
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--streamers", type=int, default=1_000)
    parser.add_argument("--period", type=float, default=20.0, help="STREAMERS_POLL_SECONDS")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=1.0, help="streams starting per second")
    args = parser.parse_args()
    asyncio.run(run(args.players, args.streamers, args.period, args.seconds, args.rate))


if __name__ == "__main__":
    main()
