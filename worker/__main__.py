"""`python -m worker` runs until SIGTERM/SIGINT; `python -m worker --once` polls every
tracked player once, drains the outbox and exits 0 (SPEC §6)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from app.config import load_settings
from app.logging import configure_logging
from worker.health import HealthServer
from worker.runner import Worker

log = logging.getLogger("worker")


async def main(once: bool) -> int:
    settings = load_settings()
    configure_logging(settings)
    if not settings.contact_email and not settings.chesscom_user_agent:
        log.warning("CONTACT_EMAIL is not set: Chess.com may answer 403 without contact details")
    worker = Worker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop.set)
    try:
        if once:
            await worker.run_once()
        else:
            health: HealthServer | None = None
            if settings.worker_metrics_port:
                health = HealthServer(
                    settings.worker_metrics_host,
                    settings.worker_metrics_port,
                    loop,
                    worker.health,
                )
                health.start()
                log.info(
                    "worker /healthz and /metrics on %s:%s",
                    settings.worker_metrics_host,
                    health.port,
                )
            log.info(
                "worker started (poll interval %ss, concurrency %s)",
                settings.poll_interval_seconds,
                settings.poll_concurrency,
            )
            try:
                await worker.run_forever()
            finally:
                if health is not None:
                    await asyncio.to_thread(health.stop)
    finally:
        await worker.aclose()
    log.info("worker stopped")
    return 0


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument(
        "--once", action="store_true", help="poll every player once, drain the outbox, exit"
    )
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.once)))


if __name__ == "__main__":
    cli()
