"""An in-process SMTP server for tests: aiosmtpd on 127.0.0.1 in its own thread.

It keeps every accepted message (parsed, plus the envelope), counts SMTP sessions
so tests can prove connection reuse, and injects faults: temporary or permanent
replies to the next commands, refused recipients, dropped connections, a restart.

    with running_smtp_server() as smtp:
        mailer = SMTPMailer(smtp.host, smtp.port)
        ...
        [received] = await smtp.wait_for(1)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Stage = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the envelope as sent, and the parsed content."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    login: str | None

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", ""))


class SMTPServerFake:
    """A real SMTP server on a local port, with inspection and fault injection.

    Thread-safe: the server runs in aiosmtpd's thread, the test in its own loop.
    ``connections`` counts SMTP sessions (a client's first EHLO/HELO), so the
    controller's own start-up probe is not counted.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.credentials = credentials
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._faults: dict[str, deque[str]] = {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
        self._rejected: dict[str, str] = {}
        self._connections = 0
        self._active: set[int] = set()
        self._max_active = 0
        self._live: weakref.WeakSet[_FakeSMTP] = weakref.WeakSet()
        self._controller: _Controller | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Listen (on a free port the first time, on the same port after a restart)."""
        if self._controller is not None:
            raise RuntimeError("the SMTP fake is already running")
        controller = _Controller(self, hostname=self.host, port=self.port)
        controller.start()
        self.port = controller.port
        self._controller = controller

    def stop(self) -> None:
        """Close every client connection, then stop listening."""
        if self._controller is None:
            return
        self.drop_connections()
        self._controller.stop()
        self._controller = None

    def restart(self) -> None:
        """Stop and start again on the same port, as a rebooted mail server would."""
        self.stop()
        self.start()

    def __enter__(self) -> SMTPServerFake:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------
    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the messages accepted so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """How many SMTP sessions clients have opened."""
        with self._lock:
            return self._connections

    @property
    def active_connections(self) -> int:
        with self._lock:
            return len(self._active)

    @property
    def max_active_connections(self) -> int:
        """The most sessions that were open at the same time."""
        with self._lock:
            return self._max_active

    async def wait_for(
        self,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for polling another thread
    ) -> list[ReceivedMessage]:
        """Wait (without blocking the loop) until ``count`` messages arrived."""
        deadline = time.monotonic() + timeout
        while len(messages := self.messages) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"expected {count} messages, got {len(messages)}")
            await asyncio.sleep(0.01)
        return messages

    def wait_for_blocking(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """:meth:`wait_for` for synchronous code (blocks the calling thread)."""
        deadline = time.monotonic() + timeout
        while len(messages := self.messages) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"expected {count} messages, got {len(messages)}")
            time.sleep(0.01)
        return messages

    def clear(self) -> None:
        """Forget received messages and session counts (faults stay)."""
        with self._lock:
            self._messages.clear()
            self._connections = 0
            self._max_active = len(self._active)

    def reset(self) -> None:
        """:meth:`clear` plus forgetting every injected fault."""
        self.clear()
        with self._lock:
            for queue in self._faults.values():
                queue.clear()
            self._rejected.clear()

    # -- fault injection ---------------------------------------------------
    def fail_next(
        self,
        n: int = 1,
        code: int = 451,
        message: str = "try again later",
        *,
        stage: Stage = "DATA",
    ) -> None:
        """Answer the next ``n`` MAIL/RCPT/DATA commands (per ``stage``) with ``code``."""
        with self._lock:
            self._faults[stage].extend([f"{code} {message}"] * n)

    def reject_recipient(
        self, address: str, code: int = 550, message: str = "5.1.1 user unknown"
    ) -> None:
        """Refuse RCPT TO for ``address`` (case-insensitive) until :meth:`reset`."""
        with self._lock:
            self._rejected[address.lower()] = f"{code} {message}"

    def drop_connections(self) -> None:
        """Close every client connection from the server side (an idle timeout)."""
        controller = self._controller
        if controller is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._close_all(), controller.loop)
        future.result(timeout=5)

    async def _close_all(self) -> None:
        for server in list(self._live):
            if server.transport is not None:
                server.transport.close()
        await asyncio.sleep(0)

    # -- called from the server thread ---------------------------------------
    def _take_fault(self, stage: Stage) -> str | None:
        with self._lock:
            queue = self._faults[stage]
            return queue.popleft() if queue else None

    def _rcpt_reply(self, address: str) -> str | None:
        with self._lock:
            rejected = self._rejected.get(address.lower())
        return rejected or self._take_fault("RCPT")

    def _session_started(self, server: _FakeSMTP) -> None:
        with self._lock:
            self._connections += 1
            self._active.add(id(server))
            self._max_active = max(self._max_active, len(self._active))

    def _session_ended(self, server: _FakeSMTP) -> None:
        with self._lock:
            self._active.discard(id(server))

    def _store(self, envelope: Envelope, session: Session) -> None:
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data
        received = ReceivedMessage(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=raw,
            login=login.login.decode() if isinstance(login, LoginPassword) else None,
        )
        with self._lock:
            self._messages.append(received)


@contextlib.contextmanager
def running_smtp_server(
    host: str = "127.0.0.1", port: int = 0, *, credentials: tuple[str, str] | None = None
) -> Iterator[SMTPServerFake]:
    """Start an :class:`SMTPServerFake` for the duration of a ``with`` block."""
    with SMTPServerFake(host, port, credentials=credentials) as server:
        yield server


class _Handler:
    """aiosmtpd hooks: apply the injected faults, store what gets through."""

    def __init__(self, fake: SMTPServerFake) -> None:
        self.fake = fake

    async def handle_EHLO(
        self,
        server: _FakeSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        server.greeted(self.fake)
        session.host_name = hostname
        return responses

    async def handle_HELO(
        self, server: _FakeSMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        server.greeted(self.fake)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self,
        server: _FakeSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.fake.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = self.fake._take_fault("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: _FakeSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.fake._rcpt_reply(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: _FakeSMTP, session: Session, envelope: Envelope) -> str:
        reply = self.fake._take_fault("DATA")
        if reply:
            return reply
        self.fake._store(envelope, session)
        return "250 2.0.0 OK: queued"


class _FakeSMTP(SMTP):
    """aiosmtpd's protocol, reporting its session's start and end to the fake."""

    def __init__(self, *args: Any, fake: SMTPServerFake, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fake = fake
        self._greeted = False
        fake._live.add(self)

    def greeted(self, fake: SMTPServerFake) -> None:
        if not self._greeted:
            self._greeted = True
            fake._session_started(self)

    def connection_lost(self, error: Exception | None) -> None:
        if self._greeted:
            self._fake._session_ended(self)
        super().connection_lost(error)


class _Controller(Controller):
    def __init__(self, fake: SMTPServerFake, *, hostname: str, port: int) -> None:
        self._fake = fake
        kwargs: dict[str, Any] = {}
        if fake.credentials is not None:
            kwargs.update(authenticator=_Authenticator(fake.credentials), auth_require_tls=False)
        super().__init__(
            _Handler(fake),
            hostname=hostname,
            port=port,
            server_hostname="smtp.fake.test",
            **kwargs,
        )

    def factory(self) -> _FakeSMTP:
        return _FakeSMTP(self.handler, fake=self._fake, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Port 0 asks the OS for a free port; learn which before probing it.
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _Authenticator:
    def __init__(self, credentials: tuple[str, str]) -> None:
        self.login, self.password = (value.encode() for value in credentials)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == self.login
            and data.password == self.password
        )
        if ok:
            return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
