"""API throughput against a bare Starlette + asyncpg reference, side by side in one run.

Both servers run as their own process on 127.0.0.1, on one scratch database, one
uvicorn process each, the same number of database connections each:

- the project as production serves it: `python -m app` (access log on, metrics,
  every middleware), rate limits off;
- the reference (bench/_reference.py): the same SQL and nothing else.

Per round, for each server in turn (the order alternates from round to round):

- `GET /api/v1/players/{u}` with wrk, 64 connections, 2 threads, `--duration` seconds:
  requests per second and p50/p99 latency;
- a burst of `--burst` `POST /api/v1/subscriptions` for distinct addresses to one
  tracked player over 32 connections (a small asyncio client: exactly N requests, every
  status checked): requests per second; every answer must be 202.

The machine is small and shared, so the figures are medians over rounds and the
verdict is the ratio project / reference.

    scripts/with_db.sh .venv/bin/python -m bench.api_throughput [--rounds 3] [--duration 10]
    (--post-only: the POST burst alone)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from bench._common import SECRET_KEY, median, scratch_database, spread
from tests import db

ROOT = Path(__file__).resolve().parent.parent
PLAYER = "hikaru"
POOL_SIZE = 10
GET_CONNECTIONS = 64
BURST_CONNECTIONS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def seed(url: str) -> None:
    """1,000 tracked players; the one the benchmark reads has 200 confirmed subscribers."""
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO players (player_id, username, name, url, title, followers, country) "
            "SELECT g, 'player' || g, 'Player ' || g, 'https://www.chess.com/member/player' || g,"
            " NULL, g, 'US' FROM generate_series(1, 999) g"
        )
        await conn.execute(
            "INSERT INTO players (player_id, username, name, url, title, followers, country,"
            " streaming_platforms) VALUES (15448422, $1, 'Hikaru Nakamura',"
            " 'https://www.chess.com/member/Hikaru', 'GM', 1200000, 'US',"
            ' \'[{"type": "twitch", "channel_url": "https://twitch.tv/gmhikaru"}]\')',
            PLAYER,
        )
        await conn.execute(
            "INSERT INTO email_subscriptions (email, player_id, confirmed_at) "
            "SELECT 'fan' || g || '@example.com', 15448422, now() FROM generate_series(1, 200) g"
        )
    finally:
        await conn.close()


@dataclass
class Server:
    name: str
    base: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def serve(name: str, argv: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    log = Path(tempfile.gettempdir()) / f"bench-api-{name}-{os.getpid()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
    server = Server(name, f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                sys.exit(f"{name} exited:\n{log.read_text(errors='replace')}")
            try:
                if (
                    httpx.get(f"{server.base}/api/v1/players/{PLAYER}", timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"{name} never answered:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def app_env(url: str, port: int, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "DB_"))}
    env.update(
        DATABASE_URL=url,
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        RATE_LIMIT_ENABLED="false",
        SECRET_KEY=SECRET_KEY,
        CONTACT_EMAIL="bench@example.com",
        DATA_DIR=str(data_dir),
        DB_POOL_SIZE=str(POOL_SIZE),
        DB_MAX_OVERFLOW="0",
        # The player is tracked already: Chess.com is never asked (a closed port if it were).
        CHESSCOM_API_BASE=f"http://127.0.0.1:{free_port()}/pub",
        LOG_LEVEL="INFO",
    )
    return env


@dataclass
class GetFigures:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # CPU time of the server process per request


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk_get(server: Server, duration: int) -> GetFigures:
    cpu_before = cpu_seconds(server.proc.pid)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{GET_CONNECTIONS}",
            f"-d{duration}s",
            "--latency",
            "--timeout=30s",
            f"{server.base}/api/v1/players/{PLAYER}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"{server.name}: errors under load:\n{out}")
    cpu = cpu_seconds(server.proc.pid) - cpu_before
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return GetFigures(rps, p50, p99, cpu * 1000 / count)


async def _one_connection(
    port: int, bodies: list[bytes], statuses: list[int], lock: asyncio.Lock
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            async with lock:
                if not bodies:
                    return
                body = bodies.pop()
            writer.write(
                b"POST /api/v1/subscriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            statuses.append(int(head.split(b" ", 2)[1]))
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
    finally:
        writer.close()


async def post_burst(server: Server, count: int, label: str) -> float:
    """`count` subscriptions of distinct addresses over 32 keep-alive connections; req/s."""
    port = int(server.base.rsplit(":", 1)[1])
    bodies = [
        b'{"email": "%s-%d@example.com", "username": "%s"}' % (label.encode(), i, PLAYER.encode())
        for i in range(count)
    ]
    statuses: list[int] = []
    lock = asyncio.Lock()
    started = time.perf_counter()
    await asyncio.gather(
        *(_one_connection(port, bodies, statuses, lock) for _ in range(BURST_CONNECTIONS))
    )
    elapsed = time.perf_counter() - started
    wrong = [s for s in statuses if s != 202]
    if len(statuses) != count or wrong:
        sys.exit(f"{server.name}: {len(statuses)} answers, not 202: {sorted(set(wrong))}")
    return count / elapsed


async def count_rows(url: str, label: str) -> int:
    conn = await asyncpg.connect(db.asyncpg_dsn(url))
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM email_subscriptions WHERE email LIKE $1", f"{label}-%"
        )
        return n
    finally:
        await conn.close()


async def run(rounds: int, duration: int, burst: int, post_only: bool = False) -> None:
    if not post_only and shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (make bench does it as root)")
    async with scratch_database("api") as url:
        await seed(url)
        data_dir = Path(tempfile.mkdtemp(prefix="bench-api-"))
        app_port, ref_port = free_port(), free_port()
        env = app_env(url, app_port, data_dir)
        with (
            serve("project", [sys.executable, "-m", "app"], env, app_port) as app,
            serve(
                "reference",
                [sys.executable, "-m", "bench._reference", url, str(ref_port), str(POOL_SIZE)],
                env,
                ref_port,
            ) as ref,
        ):
            gets: dict[str, list[GetFigures]] = {"project": [], "reference": []}
            posts: dict[str, list[float]] = {"project": [], "reference": []}
            for r in range(rounds):
                order = (app, ref) if r % 2 == 0 else (ref, app)
                for server in order:
                    figures = GetFigures(0, 0, 0, 0)
                    if not post_only:
                        wrk_get(server, 2)  # warm-up: connections, caches, JIT-free but still
                        figures = wrk_get(server, duration)
                        gets[server.name].append(figures)
                    label = f"burst{r}-{server.name}"
                    rate = await post_burst(server, burst, label)
                    inserted = await count_rows(url, label)
                    if inserted != burst:
                        sys.exit(f"{server.name}: {inserted} rows for {burst} requests")
                    posts[server.name].append(rate)
                    print(
                        f"round {r + 1} {server.name:9}  GET {figures.rps:7.0f} req/s "
                        f"p50 {figures.p50_ms:6.1f} ms p99 {figures.p99_ms:6.1f} ms "
                        f"CPU {figures.cpu_ms:.3f} ms/req   "
                        f"POST burst {rate:6.0f} req/s",
                        flush=True,
                    )
        report(gets, posts, rounds, duration, burst)


def report(
    gets: dict[str, list[GetFigures]],
    posts: dict[str, list[float]],
    rounds: int,
    duration: int,
    burst: int,
) -> None:
    if gets["project"]:  # not with --post-only
        report_get(gets, rounds, duration)
    print(
        f"\nPOST /api/v1/subscriptions: {burst} distinct addresses, {BURST_CONNECTIONS} "
        "connections, every answer 202, every row stored\n"
    )
    mp, mq = median(posts["project"]), median(posts["reference"])
    print("| | project (runs) | reference (runs) | median project | median reference | ratio |")
    print("|---|---|---|---|---|---|")
    print(
        f"| req/s | {spread(posts['project'])} | {spread(posts['reference'])} "
        f"| {mp:.0f} | {mq:.0f} | {mp / mq:.2f} |"
    )
    per_round = [a / b for a, b in zip(posts["project"], posts["reference"], strict=True)]
    print(f"\nPOST ratio per round: {spread(per_round)}")


def report_get(gets: dict[str, list[GetFigures]], rounds: int, duration: int) -> None:
    def med(name: str, attr: str) -> float:
        return median([getattr(g, attr) for g in gets[name]])

    print(
        f"\nGET /api/v1/players/{{u}}: wrk -t2 -c{GET_CONNECTIONS} -d{duration}s, "
        f"{rounds} rounds (runs listed in order)\n"
    )
    print("| | project (runs) | reference (runs) | median project | median reference | ratio |")
    print("|---|---|---|---|---|---|")
    rows = (
        ("rps", "req/s"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("cpu_ms", "server CPU ms per request"),
    )
    for attr, label in rows:
        p = [getattr(g, attr) for g in gets["project"]]
        q = [getattr(g, attr) for g in gets["reference"]]
        mp, mq = med("project", attr), med("reference", attr)
        print(f"| {label} | {spread(p)} | {spread(q)} | {mp:.3g} | {mq:.3g} | {mp / mq:.2f} |")
    per_round = [a.rps / b.rps for a, b in zip(gets["project"], gets["reference"], strict=True)]
    p99s = [a.p99_ms / b.p99_ms for a, b in zip(gets["project"], gets["reference"], strict=True)]
    print(f"\nthroughput ratio per round: {spread(per_round)}; p99 ratio per round: {spread(p99s)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of GET load per run")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument(
        "--post-only", action="store_true", help="only the POST burst, no GET load (no wrk)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.duration, args.burst, args.post_only))


if __name__ == "__main__":
    main()
