"""Fan-out benchmarks (issue 9), each side by side with a bare reference in one run.

1. Fan-out of N subscribers of one player into an aiosmtpd sink in another process
   (`tests.fakes.smtp_sink`), by the worker's code in a process of its own
   (`bench._fanout_worker`: the event + INSERT … SELECT transaction, then
   `Worker.drain_outbox`), against a bare aiosmtplib loop (`bench._bare_smtp`) that
   flattens the same message once and per recipient only swaps that recipient's fields
   (address, Message-ID, link signatures) into its bytes, sending as many messages over
   the same number of connections to the same sink. Also reported: the fan-out
   transaction's duration and the worker process's peak RSS.
2. Outbox claim + record throughput with a sender that does nothing: the pipeline
   (claim a batch, render, record outcomes one statement per batch) against the bare
   claim and record statements alone.

    scripts/with_db.sh .venv/bin/python -m bench.fanout [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from app.channels.registry import build_channels, subscription_columns
from app.emails.messages import EventFacts, Site, prepare
from app.tokens import Purpose, TokenSigner
from bench._child import session_payload
from bench._common import SECRET_KEY, make_settings, median, scratch_database, spread
from tests import db
from tests.fakes.smtp_sink import SMTPSink
from worker.outbox.pipeline import Pipeline
from worker.outbox.store import RECORD as _RECORD
from worker.outbox.store import claim_statement

ROOT = Path(__file__).resolve().parent.parent


async def _sql(url: str, statement: str, *args: Any) -> Any:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


async def seed(url: str, player_id: int, username: str, subscribers: int) -> None:
    await _sql(
        url, "INSERT INTO players (player_id, username) VALUES ($1, $2)", player_id, username
    )
    await _sql(
        url,
        "INSERT INTO email_subscriptions (email, player_id, confirmed_at) "
        "SELECT 'fan' || g || '.' || $2 || '@example.com', $1, now() "
        "FROM generate_series(1, $3) g",
        player_id,
        username,
        subscribers,
    )
    await _sql(url, "VACUUM ANALYZE email_subscriptions")


def sample_message(path: Path) -> int:
    """One real live_match email with real-length signed links (the bare loop's
    message), and next to it (``.fields.json``) what differs per recipient: the
    address, the Message-ID's own part and the links' signatures."""
    site = Site("Chess.com Helper <alerts@bench.test>", "http://bench.test")
    facts = EventFacts("live_match", "bench-session", session_payload(int(time.time())))  # type: ignore[arg-type]
    signer = TokenSigner(SECRET_KEY)
    address = "fan123456.hikaru@example.com"
    tokens = {
        "unsubscribe_url": signer.sign(Purpose.unsubscribe, 123456, address),
        "manage_url": signer.sign(Purpose.manage, 123456, address),
    }
    links = {
        "unsubscribe_url": "http://bench.test/api/v1/unsubscribe?token="
        + tokens["unsubscribe_url"],
        "manage_url": "http://bench.test/manage?token=" + tokens["manage_url"],
    }
    data = prepare(facts, site).render(to=address, row_id=1, links=links)
    path.write_bytes(data.data)
    message_id = data.message_id.strip("<>").split("@")[0].removeprefix("notification-")
    fields = [address, message_id, *(t.rsplit(".", 1)[1] for t in tokens.values())]
    for field in fields:
        assert data.data.count(field.encode()) >= 1, field
    path.with_suffix(".fields.json").write_text(json.dumps(fields))
    return len(data.data)


async def _child(*args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far; 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def worker_run(
    url: str, sink: SMTPSink, connections: int, player: int, n: int
) -> dict[str, Any]:
    await _sql(url, "TRUNCATE notification_logs, events")
    sink.clear()
    sink_cpu = _cpu_seconds(sink.process.pid or 0)
    result = await _child(
        "bench._fanout_worker", url, sink.host, str(sink.port), str(connections), str(player)
    )
    counts = sink.wait_for(n, timeout=30)
    result["sink_cpu_seconds"] = _cpu_seconds(sink.process.pid or 0) - sink_cpu
    assert result["queued"] == n and result["sent"] == n, result
    assert counts["messages"] == n, counts
    assert len(sink.deliveries()) == n, "one email per subscriber"
    result["sessions"] = counts["sessions"]
    return result


async def bare_run(sink: SMTPSink, connections: int, n: int, message: Path) -> dict[str, Any]:
    sink.clear()
    sink_cpu = _cpu_seconds(sink.process.pid or 0)
    result = await _child(
        "bench._bare_smtp",
        sink.host,
        str(sink.port),
        str(connections),
        str(n),
        str(message),
        str(message.with_suffix(".fields.json")),
    )
    counts = sink.wait_for(n, timeout=30)
    result["sink_cpu_seconds"] = _cpu_seconds(sink.process.pid or 0) - sink_cpu
    assert counts["messages"] == n, counts
    return result


async def fan_out_figures(
    sizes: list[int], repeats: int, connections: int, large_repeats: int = 1
) -> None:
    print(f"## Fan-out into an aiosmtpd sink (another process), {connections} connections\n")
    message = Path(tempfile.mkdtemp()) / "message.eml"
    size_bytes = sample_message(message)
    print(f"message size: {size_bytes} bytes (multipart text + HTML, two games)\n")
    with SMTPSink.start() as sink:
        async with scratch_database("fanout") as url:
            for i, n in enumerate(sizes):
                await seed(url, 1000 + i, f"star{i}", n)
            for i, n in enumerate(sizes):
                runs = repeats if n <= 20_000 else large_repeats
                worker: list[dict[str, Any]] = []
                bare: list[dict[str, Any]] = []
                for _ in range(runs):  # alternating, so both see the same machine
                    worker.append(await worker_run(url, sink, connections, 1000 + i, n))
                    bare.append(await bare_run(sink, connections, n, message))
                _report(n, worker, bare)


def _report(n: int, worker: list[dict[str, Any]], bare: list[dict[str, Any]]) -> None:
    end_to_end = [n / (w["fanout_seconds"] + w["drain_seconds"]) for w in worker]
    delivery = [n / w["drain_seconds"] for w in worker]
    reference = [n / b["seconds"] for b in bare]
    fanout = [w["fanout_seconds"] for w in worker]
    rss = [w["peak_rss_mb"] for w in worker]
    # CPU per message (µs): the sending process (the worker's drain; the whole bare loop)
    # and the sink. Less sensitive to the machine's load than the rates.
    worker_cpu = [1e6 * w["drain_cpu_seconds"] / n for w in worker]
    bare_cpu = [1e6 * b["cpu_seconds"] / n for b in bare]
    worker_sink = [1e6 * w["sink_cpu_seconds"] / n for w in worker]
    bare_sink = [1e6 * b["sink_cpu_seconds"] / n for b in bare]
    print(f"### {n:,} subscribers ({len(worker)} run(s) each, alternating)\n")
    print("| | runs | median |")
    print("|---|---|---|")
    print(
        f"| worker, fan-out + delivery (msg/s) | {spread(end_to_end)} | {median(end_to_end):.0f} |"
    )
    print(f"| worker, delivery only (msg/s) | {spread(delivery)} | {median(delivery):.0f} |")
    print(f"| bare aiosmtplib loop (msg/s) | {spread(reference)} | {median(reference):.0f} |")
    print(f"| fan-out transaction (s) | {spread(fanout)} | {median(fanout):.3f} |")
    print(f"| worker peak RSS (MB) | {spread(rss)} | {median(rss):.0f} |")
    for label, values in (
        ("CPU per message, worker drain (µs)", worker_cpu),
        ("CPU per message, bare loop (µs)", bare_cpu),
        ("sink CPU per message, worker's run (µs)", worker_sink),
        ("sink CPU per message, bare run (µs)", bare_sink),
    ):
        print(f"| {label} | {spread(values)} | {median(values):.0f} |")
    ratios = [
        (n / (w["fanout_seconds"] + w["drain_seconds"])) / (n / b["seconds"])
        for w, b in zip(worker, bare, strict=True)
    ]
    print(
        f"| ratio per pair (worker end to end / bare) | {spread(ratios)} | {median(ratios):.2f} |"
    )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    ratio = median(end_to_end) / median(reference)
    ratio_delivery = median(delivery) / median(reference)
    print(
        f"\nratio worker / bare: **{ratio:.2f}** end to end, {ratio_delivery:.2f} delivery only;"
        f" SMTP sessions opened by the worker: {[w['sessions'] for w in worker]}\n"
    )


class _NoopMailer:
    async def send(self, message: object) -> None:
        return None

    async def send_raw(self, message: object) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def claim_record_figures(rows: int, repeats: int, batch: int) -> None:
    print(f"## Outbox claim + record, sender does nothing ({rows:,} rows, batch {batch})\n")
    async with scratch_database("claim") as url:
        await seed(url, 7, "claimstar", rows)
        settings = make_settings(url, delivery_batch_size=batch, delivery_concurrency=4)
        from app.db import create_engine, create_session_factory

        engine = create_engine(settings)
        factory = create_session_factory(engine)
        full: list[float] = []
        bare: list[float] = []
        try:
            for _ in range(repeats):
                await _reset(url, rows)
                channels = build_channels(
                    settings, TokenSigner(SECRET_KEY), {"email": {"mailer": _NoopMailer()}}
                )
                deliverer = Pipeline(settings, channels, factory)
                started = time.perf_counter()
                while (await deliverer.run_batch()).claimed:
                    pass
                full.append(rows / (time.perf_counter() - started))
                assert (
                    await _sql(url, "SELECT count(*) FROM notification_logs WHERE status = 'sent'")
                    == rows
                )
                await _reset(url, rows)
                bare.append(await _bare_claim_record(url, rows, batch))
        finally:
            await engine.dispose()
    print("| | runs (rows/s) | median |")
    print("|---|---|---|")
    print(f"| pipeline: claim, render, no-op send, record | {spread(full)} | {median(full):.0f} |")
    print(f"| bare: the claim and record statements alone | {spread(bare)} | {median(bare):.0f} |")
    print(f"\nratio pipeline / bare: {median(full) / median(bare):.2f}\n")


async def _reset(url: str, rows: int) -> None:
    await _sql(url, "TRUNCATE notification_logs, events")
    event = await _sql(
        url,
        "INSERT INTO events (kind, player_id, key, payload) VALUES ('live_match', 7, 'claim', $1) "
        "RETURNING id",
        json.dumps(_payload_json()),
    )
    await _sql(
        url,
        "INSERT INTO notification_logs (subscription_id, event_id) "
        "SELECT id, $1 FROM email_subscriptions",
        event,
    )
    await _sql(url, "VACUUM ANALYZE notification_logs")


def _payload_json() -> dict[str, Any]:
    from app.notifications.payloads import dump_payload

    return dump_payload(session_payload(int(time.time())))  # type: ignore[arg-type]


async def _bare_claim_record(url: str, rows: int, batch: int) -> float:
    """The same two statements, compiled by SQLAlchemy once, driven by asyncpg directly."""
    claim = str(claim_statement(subscription_columns())).replace(":limit", "$1")
    claim = claim.replace(":lease", "$2")
    record = (
        str(_RECORD)
        .replace("CAST(:ids", "CAST($1").replace("CAST(:leases", "CAST($2")
        .replace("CAST(:sent", "CAST($3").replace("CAST(:final", "CAST($4")
        .replace("CAST(:errors", "CAST($5").replace("CAST(:delays", "CAST($6")
        .replace("CAST(:postponed", "CAST($7")
    )  # fmt: skip
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        started = time.perf_counter()
        while True:
            async with conn.transaction():
                claimed = await conn.fetch(claim, batch, 60)
            if not claimed:
                break
            k = len(claimed)
            async with conn.transaction():
                await conn.execute(
                    record,
                    [r["id"] for r in claimed],
                    [r["locked_until"] for r in claimed],
                    [True] * k,
                    [False] * k,
                    [None] * k,
                    [0.0] * k,
                    [False] * k,
                )
        return rows / (time.perf_counter() - started)
    finally:
        await conn.close()


async def run(
    sizes: list[int], repeats: int, connections: int, claim_rows: int, large_repeats: int
) -> None:
    if claim_rows:
        await claim_record_figures(claim_rows, repeats, 500)
    await fan_out_figures(sizes, repeats, connections, large_repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs per side up to 20,000")
    parser.add_argument(
        "--large-repeats", type=int, default=1, help="runs per side above 20,000 (~5 min each)"
    )
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--claim-rows", type=int, default=20_000, help="0: skip that figure")
    args = parser.parse_args()
    asyncio.run(
        run(args.sizes, args.repeats, args.connections, args.claim_rows, args.large_repeats)
    )


if __name__ == "__main__":
    main()
