"""Send rendered emails: over SMTP (a small connection pool) or into ``.eml`` files.

Both senders implement :class:`Mailer`, so delivery code does not care which one
the settings chose (:func:`build_mailer`). Delivery hands over ready bytes
(:meth:`Mailer.send_raw`, no re-flattening per message); ``send`` takes an
``EmailMessage`` for everything else. Every failure surfaces as a :class:`MailError` whose
``retryable`` flag tells the outbox whether to back off and try again
(:class:`TransientMailError`) or to give up on the row (:class:`PermanentMailError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import ClassVar, Literal, Protocol

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings
from aiosmtplib.typing import SMTPStatus

from app.closing import AsyncClosing
from app.config import Settings
from app.emails.render import Rendered

logger = logging.getLogger(__name__)

Transaction = Callable[[aiosmtplib.SMTP], Awaitable[tuple[dict[str, aiosmtplib.SMTPResponse], str]]]

TLSMode = Literal["none", "starttls", "tls"]

_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class MailError(Exception):
    """A message could not be handed over; ``retryable`` says whether to try later."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientMailError(MailError):
    """Worth retrying later: 4xx replies, network trouble, timeouts, session setup."""

    retryable: ClassVar[bool] = True


class MailServerUnavailable(TransientMailError):
    """No SMTP session could be opened (refused, unreachable, timed out, no greeting):
    the server is down, which says nothing about the message. Delivery waits for the
    server instead of counting an attempt against the row."""


class PermanentMailError(MailError):
    """Retrying cannot help: 5xx replies to the transaction, refused recipients."""

    retryable: ClassVar[bool] = False


class Mailer(AsyncClosing, Protocol):
    """Hands a rendered message to the outside world; raises :class:`MailError`."""

    async def send(self, message: EmailMessage) -> None:
        """Deliver one message (envelope taken from its From/To headers)."""
        ...

    async def send_raw(self, message: Rendered) -> None:
        """Deliver one rendered message as is, to its envelope recipient."""
        ...


class SMTPMailer(Mailer):
    """Sends through one SMTP server, reusing up to ``pool_size`` connections.

    Opening a connection (TCP, TLS, EHLO, AUTH) costs several round trips, so a
    connection serves many messages, one transaction at a time. A connection the
    server dropped while it sat idle is replaced transparently; after a failed
    transaction an RSET proves the connection still usable before it is reused.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        tls: TLSMode = "none",
        timeout: float = 30,
        pool_size: int = 4,
        *,
        local_hostname: str | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "tls"):
            raise ValueError(f"tls must be 'none', 'starttls' or 'tls', not {tls!r}")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.host = host
        self.port = port
        self.tls: TLSMode = tls
        self.timeout = timeout
        self.pool_size = pool_size
        self._username = username
        self._password = password
        self._local_hostname = local_hostname
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False
        self._connections_opened = 0

    @property
    def connections_opened(self) -> int:
        """How many SMTP connections this mailer has opened so far (proves reuse)."""
        return self._connections_opened

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message``; raises :class:`TransientMailError` or
        :class:`PermanentMailError`."""
        await self._send(
            lambda conn: conn.send_message(message, timeout=self.timeout),
            str(message.get("Message-ID")),
        )

    async def send_raw(self, message: Rendered) -> None:
        """Deliver prepared bytes to one recipient; errors as for :meth:`send`.

        The transaction is aiosmtplib's MAIL, RCPT and DATA, with the bytes handed over
        as they go on the wire (:func:`wire_data`): ``sendmail`` would scan every
        message three times with regular expressions to make them so (for SIZE, for
        the line ends, for leading dots), which cost more than half of this process's
        time per message in the fan-out benchmark, and ours are built that way."""
        size, data = wire_data(message.data)
        await self._send(
            lambda conn: _transmit(
                conn, message.sender, message.recipient, size, data, self.timeout
            ),
            message.message_id,
        )

    async def _send(self, transaction: Transaction, message_id: str) -> None:
        if self._closed:
            raise TransientMailError("the SMTP mailer is closed")
        async with self._slots:
            try:
                await self._send_with_reconnect(transaction, message_id)
            except MailError:
                raise
            except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
                raise _to_mail_error(exc) from exc

    async def aclose(self) -> None:
        """QUIT the idle connections; connections in use close when their send ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(conn, self.timeout) for conn in idle))

    async def _send_with_reconnect(self, transaction: Transaction, message_id: str) -> None:
        """Send on a pooled connection; if that connection turns out to have been
        closed by the server while idle, retry once on a fresh one. (Only a reused
        connection is retried: a fresh one failing means the server is in trouble.
        The deterministic Message-ID lets receivers drop the rare duplicate of a
        message whose 250 reply was lost with the connection.)"""
        conn, reused = await self._checkout()
        try:
            await self._transact(conn, transaction, message_id)
        except aiosmtplib.SMTPServerDisconnected:
            if not reused:
                raise
            logger.info(
                "smtp connection to %s:%s dropped while idle; reconnecting", self.host, self.port
            )
            await self._transact(await self._connect(), transaction, message_id)
        except aiosmtplib.SMTPResponseException as exc:
            # 421: the server is closing this (idle) channel; a new one may work.
            if exc.code != 421 or not reused:
                raise
            logger.info(
                "smtp server %s:%s closed an idle connection (421); reconnecting",
                self.host,
                self.port,
            )
            await self._transact(await self._connect(), transaction, message_id)

    async def _transact(
        self, conn: aiosmtplib.SMTP, transaction: Transaction, message_id: str
    ) -> None:
        """One mail transaction; the connection goes back to the pool if usable."""
        try:
            refused, _ = await transaction(conn)
        except (
            aiosmtplib.SMTPResponseException,
            aiosmtplib.SMTPRecipientsRefused,
            aiosmtplib.SMTPNotSupported,
            ValueError,
        ):
            await self._reset_or_discard(conn)
            raise
        except BaseException:
            # Timeouts, disconnects, cancellation: the session state is unknown.
            conn.close()
            raise
        self._release(conn)
        if refused:
            # Some recipients took the message: raising would make the outbox
            # send it again to those who already have it.
            logger.warning("smtp server refused some recipients of %s: %s", message_id, refused)

    async def _checkout(self) -> tuple[aiosmtplib.SMTP, bool]:
        """An idle live connection (``reused=True``) or a freshly opened one."""
        while self._idle:
            conn = self._idle.pop()
            if conn.is_connected:
                return conn, True
            conn.close()
        return await self._connect(), False

    async def _connect(self) -> aiosmtplib.SMTP:
        # Options by keyword (alike in shape to GameRecord.from_game: see there).
        conn = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self._username,
            password=self._password,
            local_hostname=self._local_hostname,
            timeout=self.timeout,
            use_tls=self.tls == "tls",
            start_tls=self.tls == "starttls",
        )
        try:
            await conn.connect()
        except (aiosmtplib.SMTPConnectError, OSError, TimeoutError) as exc:
            # SMTPConnectError covers timeouts and a connection closed before the
            # greeting; OSError a refused or unreachable server.
            raise MailServerUnavailable(
                f"SMTP server {self.host}:{self.port} unreachable: {exc}",
                code=getattr(exc, "code", None),
            ) from exc
        except aiosmtplib.SMTPException as exc:
            # Greeting, EHLO, STARTTLS and AUTH failures are about the session or
            # our configuration, never about this message: always worth a retry.
            code = getattr(exc, "code", None)
            raise TransientMailError(
                f"cannot open an SMTP session with {self.host}:{self.port}: {exc}", code=code
            ) from exc
        self._connections_opened += 1
        return conn

    async def _reset_or_discard(self, conn: aiosmtplib.SMTP) -> None:
        """RSET after a failed transaction; keep the connection only if it answers."""
        if conn.is_connected:
            try:
                await conn.rset(timeout=self.timeout)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass
            except BaseException:
                conn.close()
                raise
            else:
                self._release(conn)
                return
        conn.close()

    def _release(self, conn: aiosmtplib.SMTP) -> None:
        if self._closed or not conn.is_connected:
            conn.close()
        else:
            self._idle.append(conn)


class FileMailer(Mailer):
    """Writes each message to ``<directory>/<message-id>.eml`` (the development
    default when no SMTP server is configured). A resend of the same row has the
    same Message-ID and overwrites the file, so the outbox stays idempotent."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def send(self, message: EmailMessage) -> None:
        """Write the message atomically; an OSError becomes a transient failure."""
        await self._save(
            message.get("Message-ID"), bytes(message), message.get("To"), message.get("Subject")
        )

    async def send_raw(self, message: Rendered) -> None:
        """Write prepared bytes, named by their Message-ID."""
        await self._save(message.message_id, message.data, message.recipient, message.subject)

    async def _save(self, message_id: str | None, data: bytes, to: object, subject: object) -> None:
        try:
            path = await asyncio.to_thread(self._write, message_id, data)
        except OSError as exc:
            raise TransientMailError(f"cannot write email to {self.directory}: {exc}") from exc
        logger.info("email to %s written to %s: %s", to, path, subject)

    async def aclose(self) -> None:
        """Nothing to release."""

    def path_for(self, message: EmailMessage) -> Path:
        """Where :meth:`send` writes ``message``."""
        return self.directory / _file_name(message.get("Message-ID"), bytes(message))

    def _write(self, message_id: str | None, data: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / _file_name(message_id, data)
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return target


def build_mailer(settings: Settings) -> Mailer:
    """The mailer the settings ask for: SMTP when SMTP_HOST is set, else .eml files."""
    if settings.smtp_host:
        default_port = {"tls": 465, "starttls": 587}.get(settings.smtp_tls, 25)
        return SMTPMailer(
            settings.smtp_host,
            settings.smtp_port or default_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            tls=settings.smtp_tls,
            pool_size=settings.smtp_pool_size,
        )
    logger.info("SMTP_HOST is not set: emails are written to %s", settings.outbox_dir)
    return FileMailer(settings.outbox_dir)


def wire_data(data: bytes) -> tuple[int, bytes]:
    """``data`` as a DATA command transmits it, and its size for SIZE (RFC 1870: with
    CRLF line ends, before leading dots are doubled): the bytes aiosmtplib's own
    functions make. Line ends are checked with three byte counts (ours are built CRLF,
    the library's regular expression runs only for others); leading dots are doubled
    with ``bytes.replace``, which does what the library's ``(?m)^\\.`` does."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf or not data.endswith(b"\r\n"):
        data = normalize_message_line_endings(data)
    size = len(data)
    if data.startswith(b"."):
        data = b"." + data
    return size, data.replace(b"\n.", b"\n..")


async def _transmit(
    conn: aiosmtplib.SMTP, sender: str, recipient: str, size: int, data: bytes, seconds: float
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """One mail transaction for one recipient, ``data`` ready for the wire: what
    ``SMTP.sendmail`` and ``SMTP.data`` do, but for their scans of the message."""
    options = [f"SIZE={size}"] if conn.supports_extension("size") else []
    await conn.mail(sender, options=options, timeout=seconds)
    await conn.rcpt(recipient, timeout=seconds)
    start = await conn.execute_command(b"DATA", timeout=seconds)
    if start.code != SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    if conn.protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    conn.protocol.write(data + b".\r\n")
    # Awaited right after the write, with no yield between: the reply cannot be missed.
    done = await conn.protocol.read_response(timeout=seconds)
    if done.code != SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(done.code, done.message)
    return {}, done.message


def _to_mail_error(exc: BaseException) -> MailError:
    """Classify a failure of a mail transaction as transient or permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if codes and all(400 <= code < 500 for code in codes):
            return TransientMailError(f"recipient deferred: {detail}", code=codes[0])
        permanent = next((code for code in codes if code >= 500), None)
        return PermanentMailError(f"recipient refused: {detail}", code=permanent)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"SMTP server replied {exc.code} {exc.message}"
        if 500 <= exc.code < 600:
            return PermanentMailError(text, code=exc.code)
        return TransientMailError(text, code=exc.code)
    if isinstance(exc, aiosmtplib.SMTPNotSupported | ValueError):
        # e.g. a non-ASCII address the server cannot take, or no From/To header.
        return PermanentMailError(f"message cannot be sent: {exc}")
    return TransientMailError(f"SMTP delivery failed: {exc!r}")


async def _quit(conn: aiosmtplib.SMTP, seconds: float) -> None:
    """Polite QUIT, bounded in time; a dead connection is simply closed."""
    try:
        if conn.is_connected:
            await conn.quit(timeout=seconds)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        conn.close()


def _file_name(message_id: str | None, data: bytes) -> str:
    """``<abc@host>`` → ``abc@host.eml``; no Message-ID → a hash of the content."""
    stem = _FILE_NAME_UNSAFE.sub("_", (message_id or "").strip().strip("<>")).lstrip(".")[:200]
    if not stem:
        stem = "message-" + hashlib.sha256(data).hexdigest()[:24]
    return f"{stem}.eml"
