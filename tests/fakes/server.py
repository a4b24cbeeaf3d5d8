"""Serve any ASGI app (the Chess.com simulator, the API, a webhook receiver) on a real socket
in a thread: the one helper for tests and benchmarks alike.

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


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a free port of `host`, for when the URL must be known before the app
    is built (PUBLIC_BASE_URL); it stays bound until the server takes it, so nothing else
    can grab the port meanwhile."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then. With Nagle on, every
    # response written as headers + body waits for the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def socket_url(sock: socket.socket, *, https: bool = False) -> str:
    """`http://HOST:PORT` (IPv6 hosts bracketed) of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
    return f"{'https' if https else 'http'}://{shown}:{port}"


@contextmanager
def serve_on_socket(
    app: Any,
    sock: socket.socket,
    *,
    lifespan: str = "auto",
    startup_timeout: float = 10.0,
    **uvicorn_options: Any,
) -> Iterator[str]:
    """Serve `app` on `sock` (see `bound_socket`) until exit; yields the base URL.

    `uvicorn_options` go to uvicorn.Config, e.g. ssl_certfile/ssl_keyfile: the URL is then
    https. The socket is closed on exit.
    """
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,  # type: ignore[arg-type]
        timeout_graceful_shutdown=5,
        **uvicorn_options,
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []
    url = socket_url(sock, https=bool(uvicorn_options.get("ssl_certfile")))

    def serve() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # SystemExit on a failed lifespan startup, too
            errors.append(exc)

    thread = threading.Thread(target=serve, name=f"uvicorn:{url}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                cause = errors[0] if errors else None
                raise RuntimeError(f"ASGI server did not start on {url}") from cause
            time.sleep(0.01)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()


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
    with serve_on_socket(
        app,
        bound_socket(host),
        lifespan=lifespan,
        startup_timeout=startup_timeout,
        **uvicorn_options,
    ) as url:
        yield url
