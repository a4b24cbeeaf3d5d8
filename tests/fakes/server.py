"""Serve any ASGI app (the Chess.com simulator, the API) on a real socket in a thread.

Multi-process and end-to-end tests need a real URL; uvicorn runs in a background
thread with its own event loop on a free port, and stops cleanly on exit.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def run_asgi_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    *,
    lifespan: str = "auto",
    startup_timeout: float = 10.0,
    **uvicorn_options: Any,
) -> Iterator[str]:
    """Serve `app` on a free port of `host`; yields the base URL, e.g. `http://127.0.0.1:PORT`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (no delayed-ACK stalls).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,  # type: ignore[arg-type]
        timeout_graceful_shutdown=5,
        **uvicorn_options,  # e.g. ssl_certfile/ssl_keyfile: the URL is then https
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # SystemExit on a failed lifespan startup, too
            errors.append(exc)

    thread = threading.Thread(target=serve, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                cause = errors[0] if errors else None
                raise RuntimeError(f"ASGI server did not start on {host}:{port}") from cause
            time.sleep(0.01)
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        scheme = "https" if uvicorn_options.get("ssl_certfile") else "http"
        yield f"{scheme}://{shown}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
