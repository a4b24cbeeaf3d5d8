"""The aiosmtpd fake in its own process, so that it does not share the GIL with the
worker under test (in one process, every socket write waits for the other thread's
GIL slice and the figures measure the interpreter, not the worker).

The parent drives it through a pipe: `SMTPChild.start(delay)`, `.stats()`, `.clear()`,
`.stop()`. `delay` makes the server answer each DATA after that many seconds, like a
real relay that queues the message to disk before saying 250.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from tests.fakes.smtp import SMTPServerFake, _Handler


class _SlowHandler(_Handler):
    def __init__(self, fake: SMTPServerFake, delay: float) -> None:
        super().__init__(fake)
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def _serve(conn: Connection, delay: float) -> None:
    fake = SMTPServerFake()
    fake.start()
    assert fake._controller is not None
    fake._controller.handler = _SlowHandler(fake, delay)
    conn.send((fake.host, fake.port))
    try:
        while True:
            command = conn.recv()
            if command == "stats":
                conn.send(
                    {
                        "messages": len(fake.messages),
                        "connections": fake.connections,
                        "max_active": fake.max_active_connections,
                    }
                )
            elif command == "clear":
                fake.clear()
                conn.send(None)
            else:  # "stop"
                break
    finally:
        fake.stop()
        conn.send(None)


class SMTPChild:
    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.host, self.port = conn.recv()

    @classmethod
    def start(cls, delay: float = 0.0) -> SMTPChild:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, delay), daemon=True)
        process.start()
        return cls(process, parent)

    def _ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self._ask("stats")
        return result

    def wait_for(self, count: int, timeout: float = 10.0) -> dict[str, int]:
        """Messages are counted when the server stored them; wait for the last few."""
        deadline = time.monotonic() + timeout
        while (stats := self.stats())["messages"] < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return stats

    def clear(self) -> None:
        self._ask("clear")

    def stop(self) -> None:
        try:
            self._ask("stop")
        finally:
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
