"""The bare reference of the push fan-out benchmark, in a process of its own.

    python -m bench._bare_push SUBSCRIPTIONS_JSON CONNECTIONS

For each subscription of the file (what the push service handed out), the same work
the worker's push channel must do, with the same libraries, and nothing else: the
alert's JSON, encrypted for that browser (http_ece, aes128gcm, a fresh key pair each),
the VAPID header (py-vapid, one per audience), one POST over CONNECTIONS keep-alive
connections (httpx). No database, no outbox, no pinning, no per-row links. Prints one
JSON line: messages, seconds, CPU seconds, peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

from app.push.message import Notification, encrypt, headers, parse_keys, topic_for
from app.push.vapid import VapidSigner, parse_private_key
from bench._common import peak_rss_mb

NOTIFICATION = Notification(
    title="Hikaru Nakamura is playing on Chess.com",
    body="180+2 rated blitz vs magnuscarlsen (2790)\n180+2 rated blitz vs fabianocaruana (2790)",
    url="https://www.chess.com/game/live/98765432101",
    tag="player:hikaru",
    unsubscribe_url="http://bench.test/api/v1/unsubscribe?token=" + "x" * 100,
)


async def main(
    subscriptions: list[dict[str, object]], connections: int, key_pem: str, subject: str
) -> None:
    signer = VapidSigner(parse_private_key(key_pem), subject)
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for sub in subscriptions:
        queue.put_nowait(sub)
    del subscriptions
    plaintext = NOTIFICATION.encode()
    topic = topic_for("hikaru")
    sent = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=5.0) as client:

        async def sender() -> None:
            nonlocal sent
            while not queue.empty():
                sub = queue.get_nowait()
                keys = sub["keys"]
                assert isinstance(keys, dict)
                endpoint = str(sub["endpoint"])
                body = encrypt(plaintext, parse_keys(keys["p256dh"], keys["auth"]))
                response = await client.post(
                    endpoint, content=body, headers=headers(signer.authorization(endpoint), topic)
                )
                if response.status_code == 201:
                    sent += 1

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(sender() for _ in range(connections)))
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    print(
        json.dumps(
            {"sent": sent, "seconds": elapsed, "cpu_seconds": used, "peak_rss_mb": peak_rss_mb()}
        )
    )


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        loaded = json.load(fh)
    asyncio.run(main(loaded, int(sys.argv[2]), sys.argv[3], sys.argv[4]))
