"""Poll throughput: one full `Worker.poll_all_once` cycle over N players.

The Chess.com simulator is served over a real socket (uvicorn in a thread,
`bench._common.serve_asgi`) and
answers every request after `--latency` seconds. For each repetition and each
POLL_CONCURRENCY (1 and 8, side by side) the players start fresh and get two passes:

  first pass   the baseline: profile + previous and current month, 200s, state written
  second pass  the steady state: current month only, with If-None-Match: all 304s,
               nothing written but the claim

Prints per-run times, medians, the speed-up of 8 over 1 and second/first ratios.

    scripts/with_db.sh .venv/bin/python -m bench.poll_throughput [--players 500]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from datetime import UTC, datetime

import asyncpg

from app.config import Settings
from bench._common import make_settings, median, scratch_database, serve_asgi, spread
from tests import db
from tests.fakes.chesscom import ChessComSimulator
from worker.runner import Worker

CONCURRENCIES = (1, 8)
GAMES_PER_PLAYER = 6


def build_world(players: int) -> tuple[ChessComSimulator, list[tuple[int, str, str]]]:
    """N players with a few finished games each (all before the baseline)."""
    sim = ChessComSimulator()
    now = int(time.time())
    rows = []
    for i in range(players):
        name = f"bench{i:05d}"
        profile = sim.add_player(name)
        for g in range(GAMES_PER_PLAYER):
            sim.add_game(name, end_time=now - 3600 * (g + 2))
        rows.append((int(profile["player_id"]), name, str(profile["url"])))
    return sim, rows


async def reset_players(url: str, rows: list[tuple[int, str, str]]) -> None:
    """Forget every poll: the players are tracked but never polled."""
    await db.truncate_all(url)
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.executemany(
            "INSERT INTO players (player_id, username, url) VALUES ($1, $2, $3)", rows
        )
    finally:
        await conn.close()


async def one_pass(settings: Settings, worker: Worker, sim: ChessComSimulator) -> tuple[float, str]:
    sim.reset_requests()
    started = time.perf_counter()
    await worker.poll_all_once(datetime.now(UTC))
    elapsed = time.perf_counter() - started
    statuses = Counter(r.status for r in sim.requests)
    return elapsed, " ".join(f"{k}x{v}" for k, v in sorted(statuses.items(), key=str))


async def run(players: int, latency: float, repeats: int) -> None:
    sim, rows = build_world(players)
    sim.latency_seconds = latency
    times: dict[tuple[int, str], list[float]] = {}
    async with scratch_database("poll") as url:
        with serve_asgi(sim) as root:
            print(
                f"poll_throughput: {players} players, {latency * 1000:.0f} ms per request, "
                f"{repeats} repetitions, concurrency {' vs '.join(map(str, CONCURRENCIES))}"
            )
            for rep in range(1, repeats + 1):
                for concurrency in CONCURRENCIES:
                    await reset_players(url, rows)
                    settings = make_settings(
                        url,
                        chesscom_api_base=f"{root}/pub",
                        poll_concurrency=concurrency,
                        chesscom_timeout_seconds=30,
                    )
                    worker = Worker(settings)
                    try:
                        for label in ("first", "second"):
                            elapsed, statuses = await one_pass(settings, worker, sim)
                            times.setdefault((concurrency, label), []).append(elapsed)
                            print(
                                f"  run {rep} concurrency {concurrency} {label:6s} pass "
                                f"{elapsed:7.2f} s  ({players / elapsed:6.1f} players/s; "
                                f"HTTP {statuses}; peak in flight {sim.peak_concurrency})"
                            )
                    finally:
                        await worker.aclose()
    report(times, players)


def report(times: dict[tuple[int, str], list[float]], players: int) -> None:
    print("\nmedians (seconds per full cycle):")
    print(f"  {'pass':8s}" + "".join(f"{'c=' + str(c):>12s}" for c in CONCURRENCIES) + "  speed-up")
    high = CONCURRENCIES[-1]
    for label in ("first", "second"):
        meds = [median(times[(c, label)]) for c in CONCURRENCIES]
        cells = "".join(f"{m:12.2f}" for m in meds)
        print(
            f"  {label:8s}{cells}  {meds[0] / meds[-1]:6.1f}x   (runs at c={high}: "
            f"{spread(times[(high, label)])})"
        )
    for c in CONCURRENCIES:
        first, second = median(times[(c, "first")]), median(times[(c, "second")])
        print(
            f"  c={c}: second pass (all 304) takes {second / first:.2f} of the first "
            f"({players / second:.0f} vs {players / first:.0f} players/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.poll_throughput")
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.players, args.latency, args.repeats))


if __name__ == "__main__":
    main()
