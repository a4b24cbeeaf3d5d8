"""A server in a child process of its own, driven through a pipe.

A fake that shares the interpreter with the code under test shares its GIL too, and
then the figures measure the interpreter. In a child ("spawn") it does not. The child
runs `serve(conn, delay)`: it sends its (host, port), then `answer_commands` answers
each command the parent sends until "stop". Used by `tests.fakes.smtp_sink` and
`bench._smtp_child`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any, ClassVar, Self


def answer_commands(
    conn: Connection, commands: Mapping[str, Callable[[], object]], stop: Callable[[], None]
) -> None:
    """In the child: answer each command with its function's result until "stop"; then
    stop the server and say so."""
    try:
        while (command := conn.recv()) != "stop":
            conn.send(commands[command]())
    finally:
        stop()
        conn.send(None)


class ChildServer:
    """The parent's handle. Subclasses name the child's entry (`serve`, a module-level
    function, so that "spawn" can import it) and the command that counts messages."""

    serve: ClassVar[Callable[[Connection, float], None]]
    counts_command: ClassVar[str]

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.host, self.port = conn.recv()

    @classmethod
    def start(cls, delay: float = 0.0) -> Self:
        """`delay` makes the server answer each DATA after that many seconds, like a
        relay that queues the message to disk first."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=cls.serve, args=(child, delay), daemon=True)
        process.start()
        return cls(process, parent)

    def _ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def _counts(self) -> dict[str, int]:
        result: dict[str, int] = self._ask(self.counts_command)
        return result

    def wait_for(self, messages: int, timeout: float = 10.0) -> dict[str, int]:
        """Wait until the server stored `messages` (the last few may still be in DATA)."""
        deadline = time.monotonic() + timeout
        while (counts := self._counts())["messages"] < messages and time.monotonic() < deadline:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
