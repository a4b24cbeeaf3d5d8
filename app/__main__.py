"""`python -m app`: serve the API. `make run` and the container both start it this way.

WEB_CONCURRENCY processes (uvicorn workers) share the port; each builds its own app,
engine and pool. Rate limits are shared between them only through a shared storage
(RATE_LIMIT_STORAGE_URI=redis://…): with memory:// each process keeps its own count.

uvicorn's own proxy-header handling stays off. By default it believes X-Forwarded-For
from any client on 127.0.0.1 and rewrites the peer address before the app sees it, so
anyone on the host could dodge the per-address rate limits by inventing addresses.
The app reads X-Forwarded-For itself, from TRUSTED_PROXIES only (app/api/net.py).
"""

from __future__ import annotations

import logging

import uvicorn

from app.config import load_settings
from app.logging import configure_logging

log = logging.getLogger("app")


def main() -> None:
    settings = load_settings()  # a bad value stops here, with one line naming it
    configure_logging(settings)  # before uvicorn's first lines, not at app startup
    if (
        settings.web_concurrency > 1
        and settings.rate_limit_enabled
        and settings.rate_limit_storage_uri.startswith("memory")
    ):
        log.warning(
            "WEB_CONCURRENCY=%d with RATE_LIMIT_STORAGE_URI=memory://: every process "
            "counts requests on its own, so clients get %d times the rate limit; "
            "point RATE_LIMIT_STORAGE_URI at redis://",
            settings.web_concurrency,
            settings.web_concurrency,
        )
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        proxy_headers=False,
        server_header=False,
        access_log=False,  # app.access_log writes it, cheaply
        # Logging is the app's (structlog, JSON with LOG_JSON): uvicorn's loggers
        # propagate to it instead of printing in their own format.
        log_config=None,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds)),
        workers=settings.web_concurrency,
    )


if __name__ == "__main__":
    main()
