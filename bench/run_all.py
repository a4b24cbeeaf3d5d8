"""Run every benchmark with its defaults, one after the other.

scripts/with_db.sh .venv/bin/python -m bench.run_all      (or: make bench)
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
from datetime import UTC, datetime

from bench import api_throughput, delivery_throughput, fanout, pages_throughput, poll_throughput


def main() -> None:
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs\n"
    )
    started = time.perf_counter()
    asyncio.run(poll_throughput.run(players=200, latency=0.05, repeats=3))
    print()
    asyncio.run(delivery_throughput.run(rows=1000, repeats=3, delays=[0.0, 0.01]))
    print()
    # 100,000 subscribers take minutes per side: `python -m bench.fanout` runs them.
    asyncio.run(fanout.run(sizes=[10_000], repeats=3, connections=4, claim_rows=20_000))
    print()
    asyncio.run(api_throughput.run(rounds=3, duration=10, burst=2000))
    print()
    asyncio.run(pages_throughput.run(rounds=3, duration=10))
    print(f"\nall benchmarks: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
