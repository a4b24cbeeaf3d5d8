"""SMTPMailer against a real (in-process) SMTP server: reuse, faults, reconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import pytest

from app.emails.mailer import (
    Mailer,
    MailError,
    PermanentMailError,
    SMTPMailer,
    TransientMailError,
    _to_mail_error,
)
from tests.emails.conftest import erase_confirmation
from tests.fakes.smtp import SMTPServerFake, running_smtp_server


def email_to(recipient: str, row_id: int = 1) -> EmailMessage:
    return erase_confirmation("https://helper.example/erase?token=t", to=recipient, row_id=row_id)


def mailer_for(server: SMTPServerFake, **options: object) -> SMTPMailer:
    settings: dict[str, object] = {"timeout": 5, "local_hostname": "worker.test"}
    settings.update(options)
    return SMTPMailer(server.host, server.port, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def mailer(smtp_server: SMTPServerFake) -> AsyncIterator[SMTPMailer]:
    async with mailer_for(smtp_server, pool_size=4) as opened:
        yield opened


async def test_delivers_with_envelope_from_headers(
    mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    await mailer.send(email_to("fan@example.com"))
    [received] = await smtp_server.wait_for(1)
    assert received.mail_from == "noreply@helper.example"
    assert received.rcpt_tos == ("fan@example.com",)
    assert received.subject == "Confirm deletion of your data"
    assert received.message.get_content_type() == "multipart/alternative"


async def test_concurrent_sends_share_at_most_pool_size_connections(
    mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    messages = [email_to(f"fan{n}@example.com", n) for n in range(20)]
    await asyncio.gather(*(mailer.send(message) for message in messages))
    received = await smtp_server.wait_for(20)
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(
        f"fan{n}@example.com" for n in range(20)
    )
    assert 1 <= mailer.connections_opened <= 4
    assert smtp_server.connections == mailer.connections_opened
    assert smtp_server.max_active_connections <= 4


async def test_sequential_sends_reuse_one_connection(
    mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    for n in range(20):
        await mailer.send(email_to(f"fan{n}@example.com", n))
    assert len(await smtp_server.wait_for(20)) == 20
    assert mailer.connections_opened == 1
    assert smtp_server.connections == 1


async def test_4xx_is_transient_and_the_connection_survives(
    mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    smtp_server.fail_next(1, code=451, message="4.3.0 try again later")
    with pytest.raises(TransientMailError) as caught:
        await mailer.send(email_to("fan@example.com"))
    assert caught.value.retryable and caught.value.code == 451
    assert smtp_server.messages == []
    await mailer.send(email_to("fan@example.com"))  # the outbox's retry
    assert len(await smtp_server.wait_for(1)) == 1
    assert mailer.connections_opened == 1  # RSET kept the connection usable


async def test_4xx_on_rcpt_is_transient(mailer: SMTPMailer, smtp_server: SMTPServerFake) -> None:
    smtp_server.fail_next(1, code=452, message="4.2.2 mailbox full", stage="RCPT")
    with pytest.raises(TransientMailError) as caught:
        await mailer.send(email_to("fan@example.com"))
    assert caught.value.code == 452


async def test_unknown_recipient_is_permanent(
    mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    smtp_server.reject_recipient("Gone@Example.com", code=550)
    with pytest.raises(PermanentMailError) as caught:
        await mailer.send(email_to("gone@example.com"))
    assert not caught.value.retryable and caught.value.code == 550
    assert "gone@example.com" in str(caught.value)
    await mailer.send(email_to("fan@example.com"))
    [received] = await smtp_server.wait_for(1)
    assert received.rcpt_tos == ("fan@example.com",)
    assert mailer.connections_opened == 1


@pytest.mark.parametrize("stage", ["MAIL", "DATA"])
async def test_5xx_is_permanent(
    mailer: SMTPMailer, smtp_server: SMTPServerFake, stage: str
) -> None:
    smtp_server.fail_next(1, code=554, message="5.7.1 rejected as spam", stage=stage)  # type: ignore[arg-type]
    with pytest.raises(PermanentMailError) as caught:
        await mailer.send(email_to("fan@example.com"))
    assert caught.value.code == 554


async def test_connection_dropped_by_the_server_is_replaced(
    mailer: SMTPMailer, smtp_server: SMTPServerFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.emails.mailer")
    await mailer.send(email_to("fan@example.com", 1))
    # The server closes the idle connection; the client has not noticed yet.
    smtp_server.drop_connections()
    await mailer.send(email_to("fan@example.com", 2))
    assert len(await smtp_server.wait_for(2)) == 2
    assert mailer.connections_opened == 2
    assert "reconnecting" in caplog.text


async def test_idle_connection_known_to_be_closed_is_replaced(
    mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    await mailer.send(email_to("fan@example.com", 1))
    smtp_server.drop_connections()
    await asyncio.sleep(0.05)  # the client sees the close this time
    await mailer.send(email_to("fan@example.com", 2))
    assert len(await smtp_server.wait_for(2)) == 2
    assert mailer.connections_opened == 2


async def test_server_restart_is_survived(mailer: SMTPMailer, smtp_server: SMTPServerFake) -> None:
    await mailer.send(email_to("fan@example.com", 1))
    smtp_server.restart()
    await mailer.send(email_to("fan@example.com", 2))
    assert len(await smtp_server.wait_for(2)) == 2
    assert mailer.connections_opened == 2


async def test_server_down_is_transient() -> None:
    with running_smtp_server() as server:
        host, port = server.host, server.port
    async with SMTPMailer(host, port, timeout=2, local_hostname="worker.test") as mailer:
        with pytest.raises(TransientMailError):
            await mailer.send(email_to("fan@example.com"))
        assert mailer.connections_opened == 0


async def test_silent_server_times_out_as_transient() -> None:
    async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # hold the connection open, say nothing
        writer.close()

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SMTPMailer("127.0.0.1", port, timeout=0.3, local_hostname="w") as mailer:
            with pytest.raises(TransientMailError):
                await mailer.send(email_to("fan@example.com"))
    finally:
        server.close()
        await server.wait_closed()


async def test_logs_in_when_credentials_are_given() -> None:
    with running_smtp_server(credentials=("worker", "s3cret")) as server:
        async with mailer_for(server, username="worker", password="s3cret") as mailer:
            await mailer.send(email_to("fan@example.com"))
        [received] = await server.wait_for(1)
        assert received.login == "worker"

        async with mailer_for(server) as anonymous:
            with pytest.raises(PermanentMailError) as caught:
                await anonymous.send(email_to("fan@example.com"))
            assert caught.value.code == 530

        async with mailer_for(server, username="worker", password="wrong") as wrong:
            with pytest.raises(TransientMailError) as caught_login:
                await wrong.send(email_to("fan@example.com"))
            # Bad credentials are a configuration problem, not this message's.
            assert caught_login.value.code == 535


async def test_aclose_quits_idle_connections(smtp_server: SMTPServerFake) -> None:
    mailer: Mailer = mailer_for(smtp_server)
    async with mailer:
        await asyncio.gather(*(mailer.send(email_to(f"f{n}@example.com", n)) for n in range(3)))
        assert smtp_server.active_connections >= 1
    for _ in range(100):
        if smtp_server.active_connections == 0:
            break
        await asyncio.sleep(0.01)
    assert smtp_server.active_connections == 0
    with pytest.raises(TransientMailError):
        await mailer.send(email_to("fan@example.com"))


async def test_cancelled_send_does_not_poison_the_pool(
    mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    await mailer.send(email_to("fan@example.com", 1))
    task = asyncio.create_task(mailer.send(email_to("fan@example.com", 2)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await mailer.send(email_to("fan@example.com", 3))
    received = await smtp_server.wait_for(2)
    assert received[-1].message["Message-ID"] == email_to("x@example.com", 3)["Message-ID"]


def test_constructor_validates_options() -> None:
    with pytest.raises(ValueError):
        SMTPMailer("localhost", 25, tls="ssl")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SMTPMailer("localhost", 25, pool_size=0)


@pytest.mark.parametrize(
    ("error", "expected", "code"),
    [
        (aiosmtplib.SMTPDataError(451, "later"), TransientMailError, 451),
        (aiosmtplib.SMTPDataError(552, "too big"), PermanentMailError, 552),
        (aiosmtplib.SMTPSenderRefused(553, "no", "a@b"), PermanentMailError, 553),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "busy", "a@b")]),
            TransientMailError,
            450,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(450, "busy", "a@b"),
                    aiosmtplib.SMTPRecipientRefused(550, "unknown", "c@d"),
                ]
            ),
            PermanentMailError,
            550,
        ),
        (aiosmtplib.SMTPServerDisconnected("gone"), TransientMailError, None),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientMailError, None),
        (ConnectionResetError("reset"), TransientMailError, None),
        (TimeoutError(), TransientMailError, None),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 needed"), PermanentMailError, None),
        (ValueError("No From header provided in message"), PermanentMailError, None),
    ],
)
def test_errors_are_classified(
    error: Exception, expected: type[MailError], code: int | None
) -> None:
    mapped = _to_mail_error(error)
    assert type(mapped) is expected
    assert mapped.retryable is (expected is TransientMailError)
    assert mapped.code == code
