"""The worker's peak memory (issue 19 item 6) with 10,000 Lichess and 10,000 Chess.com
players tracked: `python -m worker` as it runs in production, against both simulators
(in this process, served on loopback), for `--seconds`; its peak RSS (VmHWM) read from
/proc. Target: at most 250 MB.

    scripts/with_db.sh .venv/bin/python -m bench.worker_memory [--seconds 120]

The Chess.com players have no games (their archives answer `{"games": []}`); each
sweep of the Lichess players reads all 10,000 (100 a request, 10 requests a second).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench._common import SECRET_KEY, scratch_database, serve_asgi
from tests import db
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.lichess import LichessSimulator

ROOT = Path(__file__).resolve().parent.parent


async def seed(url: str, players: int) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, username) "
            "SELECT 1000 + i, 'c' || lpad(i::text, 5, '0') FROM generate_series(0, $1 - 1) AS i",
            players,
        )
        await conn.execute(
            "INSERT INTO players (player_id, platform, username, next_poll_at) "
            "SELECT nextval('players_lichess_id_seq'), 'lichess', 'l' || lpad(i::text, 5, '0'), "
            "'infinity' FROM generate_series(0, $1 - 1) AS i",
            players,
        )
        await conn.execute(
            "INSERT INTO email_subscriptions (email, player_id, confirmed_at) "
            "SELECT 'fan' || abs(player_id) || '@example.com', player_id, now() FROM players"
        )
    finally:
        await conn.close()


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident set size of `pid`, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


async def run(players: int, seconds: float) -> None:
    chesscom, lichess = ChessComSimulator(), LichessSimulator()
    for i in range(players):
        chesscom.add_player(f"c{i:05d}")
        lichess.add_user(f"l{i:05d}")
    for i in range(0, players, 10):
        chesscom.set_streamer(f"c{i:05d}", live=i % 20 == 0)
    async with scratch_database("memory") as url:
        await seed(url, players)
        with serve_asgi(chesscom) as chesscom_root, serve_asgi(lichess) as lichess_root:
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "SECRET_KEY": SECRET_KEY,
                "CONTACT_EMAIL": "bench@example.com",
                "CHESSCOM_API_BASE": f"{chesscom_root}/pub",
                "LICHESS_API_BASE": lichess_root,
                "LICHESS_REQUESTS_PER_SECOND": "10",
                "CHESSCOM_REQUESTS_PER_SECOND": "10",
                "STREAMERS_POLL_SECONDS": "10",
                "DATA_DIR": str(Path("/tmp/chesshelper-bench-memory")),
                "LOG_LEVEL": "WARNING",
            }
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker", cwd=ROOT, env=env, stdout=subprocess.DEVNULL
            )
            samples: list[tuple[float, float, float]] = []
            began = time.monotonic()
            try:
                while time.monotonic() - began < seconds and worker.returncode is None:
                    await asyncio.sleep(2.0)
                    peak, now = peak_rss_mb(worker.pid)
                    samples.append((time.monotonic() - began, peak, now))
            finally:
                worker.terminate()
                await asyncio.wait_for(worker.wait(), 30)
    lichess_reads = len(lichess.status_requests())
    archive_reads = len([r for r in chesscom.requests if r.path.startswith("/pub/player/")])
    print(
        f"worker_memory: {players} Lichess + {players} Chess.com players, "
        f"{seconds:g} s of `python -m worker`"
    )
    for at, peak, now in samples[:: max(1, len(samples) // 8)]:
        print(f"  t={at:5.0f} s  RSS {now:6.1f} MB  peak {peak:6.1f} MB")
    print(
        f"  peak RSS {max(p for _, p, _ in samples):.1f} MB (target <= 250 MB); "
        f"Lichess status reads {lichess_reads} ({lichess_reads * 100 / players:.1f} sweeps), "
        f"Chess.com player requests {archive_reads}, peak in flight at Lichess "
        f"{lichess.peak_in_flight}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_memory")
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    asyncio.run(run(args.players, args.seconds))


if __name__ == "__main__":
    main()
