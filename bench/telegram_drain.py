"""Telegram at the Bot API's limits (issue 20 item 7): N chats, one alert each.

N bound Telegram subscriptions of one player, one session, drained by the worker's
Telegram channel (`Worker.drain_outbox`, in a process of its own) into the loopback Bot
API (`tests.fakes.telegram`, in this process's thread), which answers 429 to a 31st
message within a second or a second message to a chat within a second. Reported: the
drain time against the ideal N / 30 s, messages delivered, 429s seen.

    scripts/with_db.sh .venv/bin/python -m bench.telegram_drain [--chats 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from app.telegram.slots import PER_BOT_PER_SECOND
from bench._common import scratch_database
from tests import db
from tests.fakes.telegram import TOKEN, serve_telegram

ROOT = Path(__file__).resolve().parent.parent
PLAYER_ID = 15448422


async def seed(url: str, chats: int) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, username, name) "
            "VALUES ($1, 'hikaru', 'Hikaru Nakamura')",
            PLAYER_ID,
        )
        await conn.execute(
            "INSERT INTO email_subscriptions (channel, telegram_chat_id, player_id, confirmed_at) "
            "SELECT 'telegram', 1000000 + g, $1, now() FROM generate_series(1, $2) g",
            PLAYER_ID,
            chats,
        )
        await conn.execute("VACUUM ANALYZE email_subscriptions")
    finally:
        await conn.close()


async def run(chats: int) -> None:
    with serve_telegram(record_text=False) as sim:
        async with scratch_database("telegram") as url:
            await seed(url, chats)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            out = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "bench._telegram_worker", url, sim.base_url, TOKEN],
                cwd=ROOT, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            result = json.loads(out.stdout.strip().splitlines()[-1])
    ideal = chats / PER_BOT_PER_SECOND
    print(f"telegram_drain: {chats} chats, one alert each")
    print("| figure | value |\n|---|---|")
    print(f"| delivered (Bot API count) | {sim.delivered} of {chats} |")
    print(f"| drain time | {result['seconds']:.1f} s |")
    print(f"| ideal at 30 msg/s | {ideal:.1f} s |")
    print(f"| ideal / drain | {ideal / result['seconds']:.3f} |")
    print(f"| 429 answers | {sim.limited} |")
    print(
        f"| worker CPU | {result['cpu_seconds']:.1f} s; peak RSS {result['peak_rss_mb']:.0f} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.telegram_drain")
    parser.add_argument("--chats", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(run(args.chats))


if __name__ == "__main__":
    main()
