"""Prepared emails go to the SMTP server as aiosmtplib's own sendmail would put them on
the wire (app.emails.mailer.send_raw skips sendmail's regular-expression scans of
bytes already made that way, issue 18's fan-out figure)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from app.emails.mailer import SMTPMailer, wire_data
from app.emails.render import Rendered
from app.notifications.payloads import GameRecord
from tests.emails.conftest import live_bytes
from tests.fakes.smtp import SMTPServerFake

SENDER = "alerts@helper.example"


def library(data: bytes) -> tuple[int, bytes]:
    """What aiosmtplib makes of a message: SIZE from the normalised bytes, then DATA."""
    normalised = normalize_message_line_endings(data)
    return len(normalised), PERIOD_REGEX.sub(b"..", normalised)


@given(
    st.binary(max_size=300)
    | st.lists(st.sampled_from([b"\r", b"\n", b".", b"a", b"\r\n"])).map(b"".join)
)
def test_wire_bytes_and_size_are_the_librarys_for_any_bytes(data: bytes) -> None:
    assert wire_data(data) == library(data)


def test_a_rendered_alert_needs_no_line_end_fixing_only_its_dots_doubled(
    games: Sequence[GameRecord],
) -> None:
    data = live_bytes(games)
    assert normalize_message_line_endings(data) == data, "built with CRLF line ends"
    assert wire_data(data) == library(data)


TRICKY = [
    b"Subject: dots\r\n\r\n.starts with a dot\r\n..two\r\nend.\r\n",
    b"Subject: bare LF\n\nline one\nline two\n",
    b"Subject: no final line end\r\n\r\nlast line",
    b"Subject: lone CR\r\n\r\nhalf\rway\r\n.\r\n",
]


@pytest.fixture
async def mailer(smtp_server: SMTPServerFake) -> AsyncIterator[SMTPMailer]:
    async with SMTPMailer(smtp_server.host, smtp_server.port, timeout=5) as opened:
        yield opened


@pytest.mark.parametrize("data", TRICKY)
async def test_the_server_receives_what_sendmail_would_have_sent(
    data: bytes, mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    await mailer.send_raw(Rendered(SENDER, "lean@example.com", "<1@x>", data))
    async with aiosmtplib.SMTP(hostname=smtp_server.host, port=smtp_server.port) as smtp:
        await smtp.sendmail(SENDER, ["library@example.com"], data)
    lean, reference = await smtp_server.wait_for(2)
    assert lean.raw == reference.raw
    assert (lean.mail_from, lean.rcpt_tos) == (SENDER, ("lean@example.com",))


async def test_a_rendered_alert_arrives_byte_for_byte(
    games: Sequence[GameRecord], mailer: SMTPMailer, smtp_server: SMTPServerFake
) -> None:
    data = live_bytes(games)
    await mailer.send_raw(Rendered(SENDER, "fan@example.com", "<2@x>", data))
    (received,) = await smtp_server.wait_for(1)
    assert received.raw == data
