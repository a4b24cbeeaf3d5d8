"""FileMailer: the development default that writes ``.eml`` files (SPEC §2)."""

from __future__ import annotations

import logging
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from app.emails.mailer import FileMailer, Mailer, MailError, TransientMailError
from tests.emails.conftest import erase_confirmation


def erase_email(row_id: int = 1, erase_url: str = "https://helper.example/e?t=1") -> EmailMessage:
    return erase_confirmation(erase_url, row_id=row_id)


def listing(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


async def test_writes_one_eml_per_message(tmp_path: Path) -> None:
    outbox = tmp_path / "data" / "outbox"  # created on demand
    mailer: Mailer = FileMailer(outbox)
    async with mailer:
        await mailer.send(erase_email(1))
        await mailer.send(erase_email(2))
    files = listing(outbox)
    assert [f.name for f in files] == [
        erase_email(row)["Message-ID"].strip("<>") + ".eml" for row in (1, 2)
    ]
    parsed = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert parsed["Subject"] == "Confirm deletion of your data"
    assert parsed["To"] == "fan@example.com"


async def test_same_message_id_overwrites(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path)
    await mailer.send(erase_email(5, "https://helper.example/e?t=old"))
    await mailer.send(erase_email(5, "https://helper.example/e?t=new"))
    files = listing(tmp_path)
    assert len(files) == 1  # no duplicates, no temporary files left behind
    assert files[0] == mailer.path_for(erase_email(5))
    parsed = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(("plain",))
    assert body is not None and "t=new" in body.get_content()


async def test_message_without_id_gets_a_content_hash_name(tmp_path: Path) -> None:
    message = EmailMessage()
    message["To"] = "fan@example.com"
    message["Subject"] = "hello"
    message.set_content("body")
    mailer = FileMailer(tmp_path)
    await mailer.send(message)
    await mailer.send(message)
    [written] = listing(tmp_path)
    assert written.name.startswith("message-") and written.suffix == ".eml"


async def test_hostile_message_id_cannot_escape_the_directory(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Message-ID"] = "<../../etc/passwd@evil>"
    message.set_content("x")
    mailer = FileMailer(tmp_path / "outbox")
    await mailer.send(message)
    [written] = listing(tmp_path / "outbox")
    assert written.parent == tmp_path / "outbox"
    assert "/" not in written.name


async def test_logs_recipient_and_subject(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.emails.mailer")
    await FileMailer(tmp_path).send(erase_email())
    assert any(
        "fan@example.com" in record.getMessage()
        and "Confirm deletion of your data" in record.getMessage()
        for record in caplog.records
    )


async def test_unwritable_directory_is_a_transient_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(TransientMailError) as caught:
        await FileMailer(blocker).send(erase_email())
    assert isinstance(caught.value, MailError) and caught.value.retryable
