"""Webhook tests may talk to loopback only: a safety net under every test here.

Beyond each test's own tripwires, any DNS lookup of a name other than `localhost` and
any TCP connect to an address outside 127.0.0.0/8 or ::1 fails the test before a packet
leaves, even if the code under test had a bug that sent it elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest


def _loopback(host: object) -> bool:
    if host is None or host == "localhost":
        return True
    if isinstance(host, bytes):
        host = host.decode()
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    escapes: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host):
            escapes.append(f"DNS lookup of {host!r}")
            raise AssertionError(f"a test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            escapes.append(f"connect to {address!r}")
            raise AssertionError(f"a test tried to connect to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield escapes
    assert not escapes, f"traffic left loopback: {escapes}"


# The worker's fixtures (real PostgreSQL, SMTP server, simulator, worker factory).
from tests.worker.conftest import (  # noqa: E402, F401
    make_worker,
    sim_root,
    smtp_server,
    worker_settings,
    world,
)
from tests.worker.test_processes import (  # noqa: E402, F401  (real worker processes)
    spawn,
    worker_env,
)
