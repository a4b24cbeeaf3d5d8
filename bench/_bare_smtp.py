"""The reference: a bare aiosmtplib loop, in a process of its own (for bench.fanout).

    python -m bench._bare_smtp SMTP_HOST SMTP_PORT CONNECTIONS COUNT MESSAGE_FILE FIELDS_FILE

Sends COUNT messages over CONNECTIONS connections, one sender per connection. The
message is flattened once (MESSAGE_FILE: a real live-session email with real-length
signed links); per recipient only its fields are swapped into the bytes (FIELDS_FILE, a
JSON list of the byte strings that differ per recipient: the address, the Message-ID
and the links' signatures, each replaced by a value of the same length, so the
quoted-printable line breaks stay where they are). It prints the seconds it took (and
the CPU seconds this process spent) as JSON. No database, no templates, no signing:
the speed of the SMTP link as Python can drive it.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiosmtplib


def template(data: bytes, fields: list[str]) -> Callable[[int], tuple[str, bytes]]:
    """The message as literal pieces and holes, once; returns a function giving
    recipient n's address and bytes (the holes filled with n's same-length values)."""
    keys = [f.encode() for f in fields]
    pattern = re.compile(b"|".join(re.escape(k) for k in keys))
    pieces: list[bytes | int] = []
    position = 0
    for match in pattern.finditer(data):
        pieces.append(data[position : match.start()])
        pieces.append(keys.index(match.group()))
        position = match.end()
    pieces.append(data[position:])
    widths = [len(k) for k in keys]
    address = fields[0]
    local, domain = address.split("@", 1)

    def recipient(n: int) -> tuple[str, bytes]:
        who = f"{local[: len(local) - 8]}{n:08d}@{domain}"
        values = [who.encode()] + [str(n).rjust(w, "0").encode() for w in widths[1:]]
        return who, b"".join(p if isinstance(p, bytes) else values[p] for p in pieces)

    return recipient


async def main(
    host: str, port: int, connections: int, count: int, data: bytes, fields: list[str]
) -> None:
    numbers = iter(range(count))
    recipient = template(data, fields)

    async def sender() -> None:
        smtp = aiosmtplib.SMTP(hostname=host, port=port, local_hostname="bare.test")
        await smtp.connect()
        try:
            for n in numbers:
                to, message = recipient(n)
                await smtp.sendmail("alerts@bench.test", [to], message)
        finally:
            await smtp.quit()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(connections)))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds}))


if __name__ == "__main__":
    host, port, connections, count, path, fields_path = sys.argv[1:7]
    asyncio.run(
        main(
            host,
            int(port),
            int(connections),
            int(count),
            Path(path).read_bytes(),
            json.loads(Path(fields_path).read_text()),
        )
    )
