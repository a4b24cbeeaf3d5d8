"""One Telegram fan-out as the worker does it, in a process of its own (for
bench.telegram_drain). Prints one JSON line: queued, sent, seconds, CPU, peak RSS.

    python -m bench._telegram_worker DATABASE_URL TELEGRAM_API_BASE TELEGRAM_BOT_TOKEN
"""

from __future__ import annotations

import asyncio
import sys

from bench._child import fan_out_and_drain, print_result
from bench._common import make_settings
from worker.runner import Worker

PLAYER_ID = 15448422


async def main(url: str, base: str, token: str) -> None:
    settings = make_settings(url, telegram_api_base=base, telegram_bot_token=token)
    run = await fan_out_and_drain(Worker(settings), PLAYER_ID, "bench-telegram")
    print_result(queued=run.queued, sent=run.sent, seconds=run.seconds, cpu_seconds=run.cpu_seconds)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
