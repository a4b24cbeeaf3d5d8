"""Lichess alert delay (issue 19 item 6): from a game's start in the simulator to its
outbox rows, with N tracked Lichess players at `LICHESS_REQUESTS_PER_SECOND`.

The Lichess simulator runs in a child process (bench._lichess_child) and starts games at
random; it answers 429 to a second request in flight and counts every request. Here:
a migrated scratch database with N Lichess players and one confirmed subscriber each,
two workers' Lichess sources (separate engines, as two processes would have) sweeping,
and an "API" that reads a Lichess profile every second through the same gate (the
requests every process shares). After the baseline sweep the simulator starts games
for `--seconds`; then the tail is waited out and each game is matched with its outbox
row (the event key is the game id).

    scripts/with_db.sh .venv/bin/python -m bench.lichess_alerts --players 1000 5000 10000

Prints, per size: alerts, delay p50 / p95 / max, the request rate, the largest batch,
the most requests in flight at once (the API's included) and the 429s seen.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import time
from typing import Any

import asyncpg

from app.db import create_engine, create_session_factory
from app.lichess.client import LichessClient
from app.lichess.gate import LichessGate
from app.players.platforms import LichessProfiles
from bench._common import make_settings, scratch_database
from bench._lichess_child import serve
from tests import db
from worker.runner import Worker
from worker.sources.lichess import LichessSource

SWEEP_GOAL = 5.0


async def seed(url: str, players: int) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, platform, username, next_poll_at) "
            "SELECT nextval('players_lichess_id_seq'), 'lichess', 'l' || lpad(i::text, 5, '0'), "
            "'infinity' FROM generate_series(0, $1 - 1) AS i",
            players,
        )
        await conn.execute(
            "INSERT INTO email_subscriptions (email, player_id, confirmed_at) "
            "SELECT 'fan' || (-player_id) || '@example.com', player_id, now() FROM players"
        )
    finally:
        await conn.close()


async def baselined(url: str) -> int:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        value = await conn.fetchval(
            "SELECT count(*) FROM players WHERE (detection_state->>'baseline_done')::boolean"
        )
        return int(value or 0)
    finally:
        await conn.close()


async def outbox(url: str) -> dict[str, float]:
    """Game id → when its outbox row was written (Unix seconds)."""
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT e.key, min(extract(epoch FROM n.created_at))::float8 AS at "
            "FROM notification_logs n JOIN events e ON e.id = n.event_id "
            "WHERE e.kind = 'live_match' GROUP BY e.key"
        )
        return {r["key"]: r["at"] for r in rows}
    finally:
        await conn.close()


async def wait_for_baseline(url: str, players: int) -> None:
    """Until the first sweep has read every player (games before it never alert)."""
    for _ in range(3600):
        if await baselined(url) >= players:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the baseline sweep did not finish")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def api_reads(
    url: str, base: str, rate: float, players: int, stop: asyncio.Event
) -> list[float]:
    """A Lichess profile read a second through the shared gate, as the API makes them."""
    settings = make_settings(url)
    engine = create_engine(settings, pool_size=2, max_overflow=0)
    client = LichessClient(base, user_agent=settings.user_agent, timeout=10)
    profiles = LichessProfiles(
        client, LichessGate(create_session_factory(engine), rate, max_wait_seconds=10)
    )
    waits: list[float] = []
    rng = random.Random(7)
    try:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                await profiles.fetch(f"l{rng.randrange(players):05d}")
                waits.append(time.perf_counter() - began)
            except Exception as exc:  # a 503 would be a finding: count it as a wait of -1
                print(f"    api read failed: {exc!r}")
                waits.append(-1.0)
            await asyncio.sleep(1.0)
    finally:
        await client.aclose()
        await engine.dispose()
    return waits


async def run_size(
    players: int, rate: float, seconds: float, games_per_second: float
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=serve, args=(child, players, games_per_second, players))
    process.start()
    base = parent.recv()
    workers: list[Worker] = []
    try:
        async with scratch_database(f"lichess{players}") as url:
            await seed(url, players)
            settings = make_settings(
                url,
                lichess_api_base=base,
                lichess_requests_per_second=rate,
                lichess_sweep_seconds=SWEEP_GOAL,
            )
            workers = [Worker(settings), Worker(settings)]
            sources = [next(s for s in w.sources if isinstance(s, LichessSource)) for w in workers]
            loops = [
                asyncio.create_task(w.source_loop(s)) for w, s in zip(workers, sources, strict=True)
            ]
            await wait_for_baseline(url, players)
            stop_api = asyncio.Event()
            api = asyncio.create_task(api_reads(url, base, rate, players, stop_api))
            parent.send("start")
            parent.recv()
            window_start = time.time()
            await asyncio.sleep(seconds)
            parent.send("pause")
            parent.recv()
            window_end = time.time()
            await asyncio.sleep(players / 100 / rate + SWEEP_GOAL + 2)  # the tail
            stop_api.set()
            waits = await api
            for w in workers:
                w.stop.set()
            await asyncio.gather(*loops)
            parent.send("games")
            games = parent.recv()
            parent.send("stats")
            stats = parent.recv()
            rows = await outbox(url)
    finally:
        for w in workers:
            await w.aclose()
        parent.send("stop")
        parent.recv()
        process.join(10)
    live = [(g, t) for g, _, t, clock in games if clock is not None]
    correspondence = [g for g, _, _, clock in games if clock is None]
    delays = [rows[g] - t for g, t in live if g in rows]
    in_window = [s for s in stats["starts"] if window_start <= s <= window_end]
    return {
        "players": players,
        "games": len(live),
        "alerts": len(delays),
        "missed": len(live) - len(delays),
        "correspondence_alerts": sum(1 for g in correspondence if g in rows),
        "p50": percentile(delays, 0.5),
        "p95": percentile(delays, 0.95),
        "max": max(delays, default=float("nan")),
        "mean": statistics.fmean(delays) if delays else float("nan"),
        "rate": len(in_window) / (window_end - window_start),
        "max_ids": stats["max_ids"],
        "peak_in_flight": stats["peak_in_flight"],
        "overlaps": stats["overlaps"],
        "penalised": stats["penalised"],
        "profile_reads": stats["profile_requests"],
        "api_wait_p95": percentile([w for w in waits if w >= 0], 0.95),
        "api_failed": sum(1 for w in waits if w < 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lichess_alerts")
    parser.add_argument("--players", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--rate", type=float, default=10.0, help="LICHESS_REQUESTS_PER_SECOND")
    parser.add_argument("--seconds", type=float, default=60.0, help="games start for this long")
    parser.add_argument("--games-per-second", type=float, default=2.0)
    args = parser.parse_args()
    print(
        f"lichess_alerts: LICHESS_REQUESTS_PER_SECOND={args.rate:g}, games starting for "
        f"{args.seconds:g} s at {args.games_per_second:g}/s, two workers + API reads (1/s)"
    )
    header = (
        f"{'players':>8} {'games':>6} {'alerts':>6} {'missed':>6} {'p50 s':>6} {'p95 s':>6} "
        f"{'max s':>6} {'req/s':>6} {'ids':>4} {'inflight':>8} {'429':>4} {'api p95 s':>9}"
    )
    print(header)
    for players in args.players:
        r = asyncio.run(run_size(players, args.rate, args.seconds, args.games_per_second))
        print(
            f"{r['players']:>8} {r['games']:>6} {r['alerts']:>6} {r['missed']:>6} "
            f"{r['p50']:>6.1f} {r['p95']:>6.1f} {r['max']:>6.1f} {r['rate']:>6.2f} "
            f"{r['max_ids']:>4} {r['peak_in_flight']:>8} {r['overlaps'] + r['penalised']:>4} "
            f"{r['api_wait_p95']:>9.2f}"
        )
        print(
            f"         correspondence games alerted: {r['correspondence_alerts']}; "
            f"profile reads through the gate: {r['profile_reads']} ({r['api_failed']} failed)"
        )


if __name__ == "__main__":
    main()
