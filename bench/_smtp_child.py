"""The aiosmtpd fake in its own process, so that it does not share the GIL with the
worker under test (in one process, every socket write waits for the other thread's
GIL slice and the figures measure the interpreter, not the worker).

The parent drives it through a pipe (`tests.fakes.child_server`): `SMTPChild.start(delay)`,
`.stats()`, `.wait_for(n)`, `.clear()`, `.stop()`; unlike `tests.fakes.smtp_sink` it
keeps whole messages and counts connections open at once.
"""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from tests.fakes.child_server import ChildServer, answer_commands
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
    commands = {
        "stats": lambda: {
            "messages": len(fake.messages),
            "connections": fake.connections,
            "max_active": fake.max_active_connections,
        },
        "clear": fake.clear,
    }
    answer_commands(conn, commands, fake.stop)


class SMTPChild(ChildServer):
    serve = staticmethod(_serve)
    counts_command = "stats"

    def stats(self) -> dict[str, int]:
        return self._counts()
