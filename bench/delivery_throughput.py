"""Delivery throughput: M pending outbox rows drained into the aiosmtpd fake.

For each repetition and each SMTP pool size (1 and 4, side by side) the same M rows
are reset to `pending` and drained by `Worker.drain_outbox` (claim with SKIP LOCKED,
render, send, mark `sent`) at DELIVERY_CONCURRENCY 4. The SMTP fake runs in a child
process (see bench._smtp_child), once answering at once and once taking 10 ms per
message like a real relay. Prints messages per second, medians, and how many SMTP
connections were opened (the pool reuses them: one per pool slot per run).

    scripts/with_db.sh .venv/bin/python -m bench.delivery_throughput [--rows 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import asyncpg

from app.emails.mailer import SMTPMailer
from app.notifications.payloads import dump_payload
from bench._child import session_payload
from bench._common import make_settings, median, scratch_database, spread
from bench._smtp_child import SMTPChild
from tests import db
from worker.runner import Worker

POOL_SIZES = (1, 4)
DELIVERY_CONCURRENCY = 4


def payload() -> str:
    """The fan-out benchmark's live session (two games), as the events row stores it."""
    return json.dumps(dump_payload(session_payload(int(time.time()))))  # type: ignore[arg-type]


async def seed(url: str, rows: int) -> None:
    """One player, `rows` confirmed subscribers, one pending live_match row each."""
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, username, name, url) VALUES "
            "(15448422, 'hikaru', 'Hikaru Nakamura', 'https://www.chess.com/member/Hikaru')"
        )
        await conn.execute(
            "INSERT INTO email_subscriptions (email, player_id, confirmed_at) "
            "SELECT 'fan' || g || '@example.com', 15448422, now() FROM generate_series(1, $1) g",
            rows,
        )
        event_id = await conn.fetchval(
            "INSERT INTO events (kind, player_id, key, payload) "
            "VALUES ('live_match', 15448422, 'bench-session', $1::jsonb) RETURNING id",
            payload(),
        )
        await conn.execute(
            "INSERT INTO notification_logs (subscription_id, event_id) "
            "SELECT id, $1 FROM email_subscriptions",
            event_id,
        )
    finally:
        await conn.close()


async def reset_outbox(url: str) -> None:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            "UPDATE notification_logs SET status = 'pending', success = false, sent_at = NULL, "
            "attempts = 0, locked_until = NULL, next_attempt_at = now(), error_message = NULL"
        )
    finally:
        await conn.close()


async def sent_count(url: str) -> int:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM notification_logs WHERE status = 'sent'")
        )
    finally:
        await conn.close()


async def drain(url: str, smtp: SMTPChild, rows: int, pool: int) -> tuple[float, int]:
    """Reset the outbox, drain it once; (seconds, connections opened)."""
    await reset_outbox(url)
    smtp.clear()
    settings = make_settings(
        url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_pool_size=pool,
        delivery_concurrency=DELIVERY_CONCURRENCY,
    )
    worker = Worker(settings)
    try:
        started = time.perf_counter()
        await worker.drain_outbox()
        elapsed = time.perf_counter() - started
        mailer = worker.deliverer.channels["email"].mailer  # type: ignore[attr-defined]
        assert isinstance(mailer, SMTPMailer)
        connections = mailer.connections_opened
    finally:
        await worker.aclose()
    received = smtp.wait_for(rows)["messages"]
    sent = await sent_count(url)
    if received != rows or sent != rows:
        raise SystemExit(f"expected {rows} messages, got {received} ({sent} marked sent)")
    return elapsed, connections


async def run(rows: int, repeats: int, delays: list[float]) -> None:
    async with scratch_database("delivery") as url:
        await seed(url, rows)
        print(
            f"delivery_throughput: {rows} pending rows, DELIVERY_CONCURRENCY "
            f"{DELIVERY_CONCURRENCY}, SMTP pool {' vs '.join(map(str, POOL_SIZES))}, "
            f"{repeats} repetitions; the SMTP fake runs in its own process"
        )
        for delay in delays:
            rates: dict[int, list[float]] = {}
            opened: dict[int, set[int]] = {}
            smtp = SMTPChild.start(delay)
            try:
                print(f"\nSMTP server answering DATA after {delay * 1000:.0f} ms:")
                for rep in range(1, repeats + 1):
                    for pool in POOL_SIZES:
                        elapsed, connections = await drain(url, smtp, rows, pool)
                        stats = smtp.stats()
                        rates.setdefault(pool, []).append(rows / elapsed)
                        opened.setdefault(pool, set()).add(connections)
                        print(
                            f"  run {rep} pool {pool}: {elapsed:6.2f} s  "
                            f"{rows / elapsed:7.1f} msg/s  {connections} connections opened "
                            f"({stats['connections']} seen by the server, "
                            f"at most {stats['max_active']} at once)"
                        )
            finally:
                smtp.stop()
            print("  medians:")
            for pool in POOL_SIZES:
                print(
                    f"    pool {pool}: {median(rates[pool]):7.1f} msg/s  "
                    f"(runs: {spread(rates[pool])}); "
                    f"connections opened per run: {sorted(opened[pool])}"
                )
            low, high = POOL_SIZES
            ratio = median(rates[high]) / median(rates[low])
            print(f"    pool {high} / pool {low}: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery_throughput")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--server-delay",
        type=float,
        action="append",
        help="seconds the SMTP server takes per message (repeatable; default 0 and 0.01)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.repeats, args.server_delay or [0.0, 0.01]))


if __name__ == "__main__":
    main()
