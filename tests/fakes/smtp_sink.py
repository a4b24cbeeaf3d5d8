"""An aiosmtpd sink in a process of its own, lean enough for 100,000 messages.

The in-process fake (`tests.fakes.smtp`) keeps every message whole and shares the GIL
with the worker under test; at fan-out sizes both matter. This sink keeps only what
the checks need, (recipient, Message-ID) pairs, and runs in a child process, so the
figures measure the worker and not the interpreter it shares.

The parent drives it through a pipe: `SMTPSink.start(delay)`, `.count()`,
`.deliveries()`, `.clear()`, `.stop()`. `delay` makes the server answer each DATA
after that many seconds, like a relay that queues the message to disk first.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)


class _Handler:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.deliveries: Counter[tuple[str, str]] = Counter()
        self.messages = 0
        self.sessions = 0

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


class _Controller(Controller):
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
    try:
        while True:
            command = conn.recv()
            if command == "count":
                conn.send({"messages": handler.messages, "sessions": handler.sessions})
            elif command == "deliveries":
                conn.send(dict(handler.deliveries))
            elif command == "clear":
                handler.deliveries.clear()
                handler.messages = handler.sessions = 0
                conn.send(None)
            else:  # "stop"
                break
    finally:
        controller.stop()
        conn.send(None)


class SMTPSink:
    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.host, self.port = conn.recv()

    @classmethod
    def start(cls, delay: float = 0.0) -> SMTPSink:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, delay), daemon=True)
        process.start()
        return cls(process, parent)

    def _ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def count(self) -> dict[str, int]:
        result: dict[str, int] = self._ask("count")
        return result

    def deliveries(self) -> Counter[tuple[str, str]]:
        """How often each (recipient, Message-ID) arrived."""
        return Counter(self._ask("deliveries"))

    def wait_for(self, messages: int, timeout: float = 10.0) -> dict[str, int]:
        """Wait until the sink stored `messages` (the last few may still be in DATA)."""
        deadline = time.monotonic() + timeout
        while (counts := self.count())["messages"] < messages and time.monotonic() < deadline:
            time.sleep(0.02)
        return counts

    def clear(self) -> None:
        self._ask("clear")

    def stop(self) -> None:
        try:
            self._ask("stop")
        finally:
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()

    def __enter__(self) -> SMTPSink:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
