"""A player's badge and feed against the JSON fast path, side by side in one run (issue 21).

One server, the project as production serves it (`python -m app`: access log on, metrics,
every middleware; rate limits off), on a scratch database holding 1,000 tracked players;
the one read has 200 confirmed subscribers and 60 sessions (the feed shows 50).

Per round, each target in turn (the order rotates from round to round), wrk with 64
connections, 2 threads, `--duration` seconds:

- `json`: `GET /api/v1/players/{u}`, the API's fast path (the reference);
- `badge 200` / `feed 200`: `GET /p/{u}/badge.svg` and `/p/{u}/feed.atom`, drawn each time;
- `badge 304` / `feed 304`: the same with the `If-None-Match` of their ETag.

Figures: requests per second, p50/p99 latency, server CPU per request; the verdict is
each target's median over the JSON path's (targets: badge ≥ 0.8, 304s ≥ 1.0, p99 at most twice).

    scripts/with_db.sh .venv/bin/python -m bench.pages_throughput [--rounds 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import httpx

from bench._common import median, scratch_database, spread
from bench.api_throughput import (
    GET_CONNECTIONS,
    PLAYER,
    GetFigures,
    Server,
    _ms,
    app_env,
    cpu_seconds,
    free_port,
    seed,
    serve,
)
from tests import db

SESSIONS = 60


async def seed_sessions(url: str) -> None:
    """60 sessions of the player, an hour apart, three games each, as the worker stores them."""
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            """
            INSERT INTO events (kind, player_id, key, payload, time_classes, occurred_at)
            SELECT 'live_match', 15448422, 'session-' || s,
                   jsonb_build_object(
                       'username', $1::text, 'name', 'Hikaru Nakamura',
                       'started_at', extract(epoch FROM now())::bigint - s * 3600,
                       'games', (SELECT jsonb_agg(jsonb_build_object(
                           'event_id', 'g-' || s || '-' || g,
                           'url', 'https://www.chess.com/game/live/' || (s * 10 + g),
                           'end_time', extract(epoch FROM now())::bigint - s * 3600 + g * 400,
                           'start_time',
                               extract(epoch FROM now())::bigint - s * 3600 + g * 400 - 380,
                           'time_class', 'blitz', 'time_control', '180+2',
                           'white', $1::text, 'black', 'opponent' || g,
                           'white_rating', 3200, 'black_rating', 3000,
                           'white_result', 'win', 'black_result', 'resigned', 'rated', true))
                         FROM generate_series(1, 3) g)),
                   ARRAY['blitz'], now() - s * interval '1 hour'
            FROM generate_series(1, $2::int) s
            """,
            PLAYER,
            SESSIONS,
        )
        # As autovacuum leaves a table in steady state: statistics, and a visibility map
        # under which a feed's conditional GET is an index-only scan.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def targets(base: str) -> dict[str, tuple[str, dict[str, str]]]:
    """name → (url, headers); the 304 targets carry the ETag their 200 answered."""
    badge, feed = f"{base}/p/{PLAYER}/badge.svg", f"{base}/p/{PLAYER}/feed.atom"
    found: dict[str, tuple[str, dict[str, str]]] = {
        "json": (f"{base}/api/v1/players/{PLAYER}", {}),
        "badge 200": (badge, {}),
        "feed 200": (feed, {}),
    }
    for name, url in (("badge 304", badge), ("feed 304", feed)):
        first = httpx.get(url, timeout=5)
        assert first.status_code == 200, first.text
        headers = {"If-None-Match": first.headers["etag"]}
        again = httpx.get(url, headers=headers, timeout=5)
        if again.status_code != 304:
            sys.exit(f"{name}: the ETag got {again.status_code}, not 304")
        found[name] = (url, headers)
    entries = httpx.get(feed, timeout=5).text.count("<entry>")
    if entries != 50:
        sys.exit(f"the feed has {entries} entries, not 50")
    return found


def wrk(server: Server, url: str, headers: dict[str, str], duration: int) -> GetFigures:
    cpu_before = cpu_seconds(server.proc.pid)
    argv = ["wrk", "-t2", f"-c{GET_CONNECTIONS}", f"-d{duration}s", "--latency", "--timeout=30s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"{url}: errors under load:\n{out}")
    cpu = cpu_seconds(server.proc.pid) - cpu_before
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return GetFigures(rps, p50, p99, cpu * 1000 / count)


async def run(rounds: int, duration: int) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk`")
    async with scratch_database("pages") as url:
        await seed(url)
        await seed_sessions(url)
        data_dir = Path(tempfile.mkdtemp(prefix="bench-pages-"))
        port = free_port()
        with serve(
            "project", [sys.executable, "-m", "app"], app_env(url, port, data_dir), port
        ) as app:
            found = targets(app.base)
            names = list(found)
            figures: dict[str, list[GetFigures]] = {name: [] for name in names}
            for r in range(rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for name in order:
                    target, headers = found[name]
                    wrk(app, target, headers, 2)  # warm-up
                    f = wrk(app, target, headers, duration)
                    figures[name].append(f)
                    print(
                        f"round {r + 1} {name:9}  {f.rps:7.0f} req/s  p50 {f.p50_ms:6.1f} ms  "
                        f"p99 {f.p99_ms:6.1f} ms  CPU {f.cpu_ms:.3f} ms/req",
                        flush=True,
                    )
        report(figures, rounds, duration)


def report(figures: dict[str, list[GetFigures]], rounds: int, duration: int) -> None:
    ref = figures["json"]
    print(
        f"\nwrk -t2 -c{GET_CONNECTIONS} -d{duration}s, {rounds} rounds, one server "
        "(python -m app, WEB_CONCURRENCY=1); medians; ratios over the JSON path\n"
    )
    print(
        "| target | req/s (runs) | median req/s | p50 ms | p99 ms | CPU ms/req "
        "| req/s ÷ JSON | p99 ÷ JSON |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in figures.items():
        rps = median([f.rps for f in runs])
        p99 = median([f.p99_ms for f in runs])
        print(
            f"| {name} | {spread([f.rps for f in runs])} | {rps:.0f} "
            f"| {median([f.p50_ms for f in runs]):.1f} | {p99:.1f} "
            f"| {median([f.cpu_ms for f in runs]):.3f} "
            f"| {rps / median([f.rps for f in ref]):.2f} "
            f"| {p99 / median([f.p99_ms for f in ref]):.2f} |"
        )
    print(
        "\nRatios to the JSON path within each round (the machine's load moves between rounds):\n"
    )
    print("| target | req/s ÷ JSON per round | median | p99 ÷ JSON per round | median |")
    print("|---|---|---|---|---|")
    for name, runs in figures.items():
        rps_ratios = [f.rps / j.rps for f, j in zip(runs, ref, strict=True)]
        p99_ratios = [f.p99_ms / j.p99_ms for f, j in zip(runs, ref, strict=True)]
        print(
            f"| {name} | {spread(rps_ratios)} | {median(rps_ratios):.2f} "
            f"| {spread(p99_ratios)} | {median(p99_ratios):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per run")
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.duration))


if __name__ == "__main__":
    main()
