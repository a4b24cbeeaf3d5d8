"""Web Push fan-out (issue 20 item 7), side by side with a bare reference in one run.

N push subscribers of one player, one session: a loopback push service in a process of
its own (`tests.fakes.push_service.PushServiceChild`: checks every VAPID header,
decrypts one message in DECRYPT_EVERY with the browser's key) receives

- the worker's fan-out, in a process of its own (`bench._push_worker`: the event and
  its INSERT … SELECT, then `Worker.drain_outbox` through the push channel), and
- a bare loop (`bench._bare_push`): the same alert encrypted for each browser with the
  same library (http_ece), the same VAPID signer (py-vapid), posted over the same
  number of connections (httpx), nothing else.

Reported per pair: messages per second of each, their ratio, the worker's CPU per
message and peak RSS; then medians. Target: ratio >= 0.8, peak RSS <= 250 MB.

    scripts/with_db.sh .venv/bin/python -m bench.push_fanout [--subscribers 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec

from app.push.vapid import application_server_key, b64url
from bench._common import make_settings, median, scratch_database, spread
from tests import db
from tests.fakes.push_service import PushServiceChild

ROOT = Path(__file__).resolve().parent.parent
PLAYER_ID = 15448422
DECRYPT_EVERY = 100
SUBJECT = "mailto:bench@example.com"


async def seed(url: str, subscriptions: list[dict[str, Any]]) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, username, name) "
            "VALUES ($1, 'hikaru', 'Hikaru Nakamura')",
            PLAYER_ID,
        )
        await conn.copy_records_to_table(
            "email_subscriptions",
            records=[
                ("push", s["endpoint"], s["keys"]["p256dh"], s["keys"]["auth"], PLAYER_ID)
                for s in subscriptions
            ],
            columns=["channel", "push_endpoint", "push_p256dh", "push_auth", "player_id"],
        )
        await conn.execute("UPDATE email_subscriptions SET confirmed_at = now()")
        await conn.execute("VACUUM ANALYZE email_subscriptions")
    finally:
        await conn.close()


async def clear_outbox(url: str) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute("DELETE FROM notification_logs")
        await conn.execute("DELETE FROM events")
        await conn.execute("VACUUM ANALYZE notification_logs")
    finally:
        await conn.close()


def run_child(module: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{module} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def check(service: PushServiceChild, n: int, what: str) -> dict[str, int]:
    counts = service.wait_for(n, timeout=60)
    if counts["messages"] != n or counts["refused"]:
        raise SystemExit(f"{what}: the push service accepted {counts}, expected {n} and no refusal")
    return counts


async def run(n: int, connections: int, repeats: int) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    raw_key = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    from app.push.vapid import private_pem

    pem = private_pem(key)
    service = PushServiceChild.start(DECRYPT_EVERY)
    subs_file = tempfile.mkstemp(suffix=".json")[1]
    try:
        started = time.perf_counter()
        subscriptions = service.subscribe(application_server_key(key), n)
        print(
            f"push_fanout: {n} push subscriptions made by the push service "
            f"in {time.perf_counter() - started:.1f} s; {connections} connections; "
            f"the service decrypts 1 message in {DECRYPT_EVERY}"
        )
        await asyncio.to_thread(Path(subs_file).write_text, json.dumps(subscriptions))
        async with scratch_database("push") as url:
            await seed(url, subscriptions)
            del subscriptions
            make_settings(url)  # the settings the children build are valid
            rows = []
            for rep in range(1, repeats + 1):
                await clear_outbox(url)
                service.clear()
                worker = run_child(
                    "bench._push_worker", url, str(connections), str(PLAYER_ID), raw_key
                )
                counts_w = check(service, n, "worker")
                if worker["sent"] != n or worker["queued"] != n:
                    raise SystemExit(f"worker: {worker}")
                service.clear()
                bare = run_child("bench._bare_push", subs_file, str(connections), pem, SUBJECT)
                counts_b = check(service, n, "bare loop")
                w_rate, b_rate = n / worker["seconds"], n / bare["seconds"]
                rows.append((w_rate, b_rate, worker, bare))
                print(
                    f"  pair {rep}: worker {w_rate:7.1f} msg/s ({worker['seconds']:.1f} s, "
                    f"{worker['cpu_seconds'] / n * 1e6:.0f} µs CPU/msg, peak RSS "
                    f"{worker['peak_rss_mb']:.0f} MB) | bare {b_rate:7.1f} msg/s "
                    f"({bare['seconds']:.1f} s, {bare['cpu_seconds'] / n * 1e6:.0f} µs CPU/msg) "
                    f"| ratio {w_rate / b_rate:.2f} | decrypted {counts_w['decrypted']} + "
                    f"{counts_b['decrypted']}, refused 0"
                )
        ratios = [w / b for w, b, _, _ in rows]
        rss = [w["peak_rss_mb"] for _, _, w, _ in rows]
        worker_rates, bare_rates = [r[0] for r in rows], [r[1] for r in rows]
        print("\n| figure | runs | median |\n|---|---|---|")
        print(f"| worker msg/s | {spread(worker_rates)} | {median(worker_rates):.1f} |")
        print(f"| bare loop msg/s | {spread(bare_rates)} | {median(bare_rates):.1f} |")
        print(f"| worker / bare | {spread(ratios)} | {median(ratios):.2f} |")
        print(f"| worker peak RSS (MB) | {spread(rss)} | {median(rss):.0f} |")
    finally:
        service.stop()
        os.unlink(subs_file)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.push_fanout")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.subscribers, args.connections, args.repeats))


if __name__ == "__main__":
    main()
