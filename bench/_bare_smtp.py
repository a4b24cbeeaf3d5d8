"""The reference: a bare aiosmtplib loop, in a process of its own (for bench.fanout).

    python -m bench._bare_smtp SMTP_HOST SMTP_PORT CONNECTIONS COUNT MESSAGE_FILE

Sends COUNT copies of one ready message (each to its own recipient) over CONNECTIONS
connections, one sender per connection, and prints the seconds it took (and the CPU
seconds this process spent) as JSON. No
database, no rendering: the speed of the SMTP link as Python can drive it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiosmtplib


async def main(host: str, port: int, connections: int, count: int, data: bytes) -> None:
    numbers = iter(range(count))

    async def sender() -> None:
        smtp = aiosmtplib.SMTP(hostname=host, port=port, local_hostname="bare.test")
        await smtp.connect()
        try:
            for n in numbers:
                await smtp.sendmail("alerts@bench.test", [f"bare{n}@example.com"], data)
        finally:
            await smtp.quit()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(connections)))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds}))


if __name__ == "__main__":
    host, port, connections, count, path = sys.argv[1:6]
    asyncio.run(main(host, int(port), int(connections), int(count), Path(path).read_bytes()))
