"""An aiosmtpd sink in a process of its own, lean enough for 100,000 messages.

The in-process fake (`tests.fakes.smtp`) keeps every message whole and shares the GIL
with the worker under test; at fan-out sizes both matter. This sink keeps only what
the checks need, (recipient, Message-ID) pairs, and runs in a child process, so the
figures measure the worker and not the interpreter it shares.

The parent drives it through a pipe (`tests.fakes.child_server`): `SMTPSink.start(delay)`,
`.count()`, `.deliveries()`, `.wait_for(n)`, `.wait_closed()`, `.clear()`, `.stop()`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.fakes.child_server import ChildServer, answer_commands

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)


class _Handler:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.deliveries: Counter[tuple[str, str]] = Counter()
        self.messages = 0
        self.sessions = 0
        self.open = 0  # connections not yet lost

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        self.sessions += 1  # one per SMTP session (the controller's probe never says EHLO)
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or b""
        found = _MESSAGE_ID.search(content.split(b"\r\n\r\n", 1)[0])
        message_id = found.group(1).decode(errors="replace") if found else ""
        for rcpt in envelope.rcpt_tos:
            self.deliveries[(rcpt, message_id)] += 1
        self.messages += 1
        return "250 OK"


class _CountingSMTP(SMTP):
    """Counts open connections. A lost connection cancels its session, so once none is
    open no message from a client that went away (e.g. was killed) can still arrive."""

    def connection_made(self, transport: Any) -> None:
        self.event_handler.open += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.open -= 1
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Port 0 asks the OS for a free port; learn which before probing it.
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _serve(conn: Connection, delay: float) -> None:
    handler = _Handler(delay)
    controller = _Controller(handler, hostname="127.0.0.1", port=0)
    controller.start()
    conn.send((controller.hostname, controller.port))

    def clear() -> None:
        handler.deliveries.clear()
        handler.messages = handler.sessions = 0

    commands = {
        "count": lambda: {
            "messages": handler.messages,
            "sessions": handler.sessions,
            "open": handler.open,
        },
        "deliveries": lambda: dict(handler.deliveries),
        "clear": clear,
    }
    answer_commands(conn, commands, controller.stop)


class SMTPSink(ChildServer):
    serve = staticmethod(_serve)
    counts_command = "count"

    def count(self) -> dict[str, int]:
        return self._counts()

    def wait_closed(self, timeout: float = 60.0) -> None:
        """Wait until no SMTP connection is open: what a client that went away had
        handed over is stored, and nothing more of it can arrive."""
        deadline = time.monotonic() + timeout
        while self._counts()["open"] > 0:
            assert time.monotonic() < deadline, "SMTP connections still open"
            time.sleep(0.02)

    def deliveries(self) -> Counter[tuple[str, str]]:
        """How often each (recipient, Message-ID) arrived."""
        return Counter(self._ask("deliveries"))
