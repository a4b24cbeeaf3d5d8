"""Rendering: what all recipients of an event share is rendered once, per recipient
only what differs.

:class:`PreparedMessage` renders the templates once with placeholders for the
per-recipient links, and builds the whole MIME message once with the ``email``
package (headers encoded and folded by it, multipart structure, boundary) around
sentinel values. :meth:`PreparedMessage.render` then fills in one recipient: ``To``,
``Date``, ``Message-ID``, ``List-Unsubscribe`` and the links in both bodies, which it
encodes as quoted-printable (``binascii``). That costs tens of microseconds instead of
milliseconds, and the bytes are what the email package itself would produce for the
same message (the golden tests compare both).

Everything here is pure: no clock unless no ``date`` is given, no database, no network.
"""

from __future__ import annotations

import binascii
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import escape

from app.emails.headers import (
    MESSAGE_POLICY,
    header_safe,
    key_digest,
    own_url,
    parse_mailbox,
    recipient_header,
    valid_domain,
)

TEMPLATES_DIR = Path(__file__).parent / "templates"

# A per-recipient link, as the templates see it before a recipient is known.
_LINK_MARK = "@@link-{}@@"

# Sentinels in the prepared MIME message, each replaced per recipient.
_TO = "to-7f3a9c@recipient.invalid"
_DATE = "Thu, 01 Jan 1970 00:00:00 +0000"
_MESSAGE_ID = "<id-7f3a9c@message.invalid>"
_LIST_UNSUBSCRIBE = "<https://unsubscribe.invalid/7f3a9c>"
_TEXT = "@@body-text-7f3a9c@@"
_HTML = "@@body-html-7f3a9c@@"
# A link the fast path writes without parsing it (anything else goes through own_url).
_SAFE_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(?::\d+)?(?:/[A-Za-z0-9._~/%?=&+:,;@!$*()\-]*)?")


@dataclass(frozen=True, slots=True)
class Rendered:
    """One recipient's message, ready for the SMTP envelope."""

    sender: str  # the envelope sender (MAIL FROM)
    recipient: str
    message_id: str
    data: bytes
    subject: str = ""  # for logs


class PreparedMessage:
    """The part of a message every recipient of one event shares, rendered once."""

    def __init__(
        self,
        *,
        template: str,
        context: Mapping[str, Any],
        subject: str,
        sender: str,
        list_id: str,
        list_domain: str,
        message_kind: str,
        event_key: str,
        links: frozenset[str],
        list_unsubscribe: str | None = None,
    ) -> None:
        """``links`` names the template variables that hold per-recipient links;
        ``list_unsubscribe`` the one (if any) that also goes in ``List-Unsubscribe``."""
        if list_unsubscribe is not None and list_unsubscribe not in links:
            raise ValueError("List-Unsubscribe must be one of the message's links")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", message_kind):
            raise ValueError(f"bad message kind: {message_kind!r}")
        self.links = links
        self._list_unsubscribe = list_unsubscribe
        self._id_prefix = f"<{message_kind}-"
        self._id_suffix = f".{key_digest(event_key)}@{valid_domain(list_domain)}>"
        mailbox = parse_mailbox(sender, "sender")
        self.envelope_sender = mailbox.addr_spec
        subject = header_safe(subject)
        values = {name: _LINK_MARK.format(name) for name in links}
        env = _environment()
        text = env.get_template(f"{template}.txt").render({**context, **values})
        html = env.get_template(f"{template}.html").render({**context, **values}, subject=subject)
        self._marks = [(name, _LINK_MARK.format(name)) for name in sorted(links)]
        marks = [mark for _, mark in self._marks]
        self._text = _Body(text, marks, html=False)
        self._html = _Body(html, marks, html=True)
        self.subject = subject
        self._pieces = _skeleton(mailbox, subject, list_id, list_unsubscribe is not None)

    def message_id(self, row_id: int) -> str:
        """Deterministic per outbox row: a resend reuses it, so receivers can drop a
        duplicate that slipped through a crash."""
        if isinstance(row_id, bool) or not isinstance(row_id, int) or row_id < 0:
            raise ValueError(f"row_id must be a non-negative integer: {row_id!r}")
        return f"{self._id_prefix}{row_id}{self._id_suffix}"

    def render(
        self, *, to: str, row_id: int, links: Mapping[str, str], date: datetime | None = None
    ) -> Rendered:
        """The bytes of the message for one recipient; ``links`` holds a URL for each
        of the message's links."""
        recipient = recipient_header(to)
        message_id = self.message_id(row_id)
        urls: dict[str, str] = {}
        unsubscribe = ""
        for name, mark in self._marks:
            url = links.get(name)
            if url is None:
                raise ValueError(f"this message needs the {name} link")
            if not _SAFE_URL.fullmatch(url):
                url = own_url(url, name)  # raises: not a plain absolute http(s) URL
            urls[mark] = url
            if name == self._list_unsubscribe:
                unsubscribe = f"<{url}>"
        values = {
            _TO: recipient.encode("ascii"),
            _DATE: _date_header(date).encode("ascii"),
            _MESSAGE_ID: message_id.encode("ascii"),
            _LIST_UNSUBSCRIBE: unsubscribe.encode("ascii"),
            _TEXT: self._text.encode(urls),
            _HTML: self._html.encode(urls),
        }
        data = b"".join(
            [piece if isinstance(piece, bytes) else values[piece] for piece in self._pieces]
        )
        return Rendered(self.envelope_sender, to, message_id, data, self.subject)


def _skeleton(
    sender: Address, subject: str, list_id: str, list_unsubscribe: bool
) -> list[bytes | str]:
    """The MIME message around sentinels, split into literal bytes and sentinel names."""
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = sender
    message["To"] = _TO
    message["Subject"] = subject
    message["Date"] = _DATE
    message["Message-ID"] = _MESSAGE_ID
    message["List-Id"] = list_id
    if list_unsubscribe:
        message["List-Unsubscribe"] = _LIST_UNSUBSCRIBE
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(_TEXT + "\n", cte="quoted-printable")
    message.add_alternative(_HTML + "\n", subtype="html", cte="quoted-printable")
    flat = bytes(message)
    sentinels = [_TO, _DATE, _MESSAGE_ID, _TEXT, _HTML]
    if list_unsubscribe:
        sentinels.append(_LIST_UNSUBSCRIBE)
    for sentinel in sentinels:
        if flat.count(sentinel.encode()) != 1:
            raise AssertionError(f"sentinel {sentinel!r} not found once in the message")
    # A body sentinel stands for the body with its line ending: the encoded body has its own.
    pattern = re.compile(
        b"|".join(
            re.escape(s.encode()) + (b"\r\n" if s in (_TEXT, _HTML) else b"") for s in sentinels
        )
    )
    pieces: list[bytes | str] = []
    position = 0
    for match in pattern.finditer(flat):
        pieces.append(flat[position : match.start()])
        pieces.append(match.group().removesuffix(b"\r\n").decode())
        position = match.end()
    pieces.append(flat[position:])
    return pieces


class _Body:
    """A body as quoted-printable with CRLF line ends (what the email package writes),
    encoded once but for the lines holding a recipient's links. Quoted-printable
    encodes each line on its own, so those lines can be encoded per recipient; the
    lines between them are kept as one encoded run of bytes."""

    def __init__(self, body: str, marks: list[str], *, html: bool) -> None:
        self._html = html
        # Encoded runs of lines, and lines to fill in (with the marks each holds).
        self._chunks: list[bytes | tuple[str, tuple[str, ...]]] = []
        run: list[bytes] = []
        for line in body.encode("utf-8").splitlines():
            text = line.decode("utf-8")
            present = tuple(mark for mark in marks if mark in text)
            if not present:
                run.append(_quoted_printable(line))
                continue
            if run:
                self._chunks.append(b"".join(run))
                run = []
            self._chunks.append((text, present))
        if run:
            self._chunks.append(b"".join(run))

    def encode(self, urls: Mapping[str, str]) -> bytes:
        out: list[bytes] = []
        for chunk in self._chunks:
            if isinstance(chunk, bytes):
                out.append(chunk)
                continue
            line, present = chunk
            for mark in present:
                url = urls[mark]
                line = line.replace(mark, str(escape(url)) if self._html else url)
            out.append(_quoted_printable(line.encode("utf-8")))
        return b"".join(out)


def _quoted_printable(line: bytes) -> bytes:
    return binascii.b2a_qp(line + b"\r\n", istext=True)


@functools.lru_cache(maxsize=4)
def _formatted_date(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))


def _date_header(date: datetime | None) -> str:
    if date is None:
        return _formatted_date(int(datetime.now(UTC).timestamp()))
    moment = date.replace(tzinfo=UTC) if date.tzinfo is None else date.astimezone(UTC)
    return format_datetime(moment)


@functools.cache
def _environment() -> jinja2.Environment:
    """One Jinja environment per process: HTML autoescaped, text left as is."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
