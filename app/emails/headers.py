"""Header sanitising: every value that reaches an email header passes through here.

Two kinds of untrusted text reach our emails: values from Chess.com (names,
usernames, opponents, game URLs) and the subscriber's address. Headers only ever see
values passed through :func:`header_safe` or parsed as a single address, so CR/LF
cannot inject headers; links are only written when they are plain ``http(s)`` URLs.
"""

from __future__ import annotations

import hashlib
import re
from email.errors import HeaderParseError, ObsoleteHeaderDefect
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.policy import SMTP, Policy
from email.utils import parseaddr
from typing import Any, cast

from app.urls import plain_http_url

LIST_NAME = "Chess.com Helper"

# C0/C1 controls (CR, LF, TAB, NUL, ...), Unicode line/paragraph separators and
# bidi overrides (which can disguise text), all of which have no place in a name.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_LIST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,48}[a-z0-9_])?$")
# An address the fast path may write as is: a dot-atom local part at a plain domain
# (what the API stores); anything else goes through the full parser.
_PLAIN_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$"
)

MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1: the hard limit; 78 is only a SHOULD


class _OneLineHeader(UnstructuredHeader):
    """A header written on one line: `List-Unsubscribe` (RFC 2369) and `List-Id` (RFC 2919).

    The email package folds long unstructured headers at 78 characters and, when a
    token (our token URL) has no place to break, rewrites it as an RFC 2047 encoded
    word, `=?utf-8?q?=3Chttp...?=`, which no mail client reads as a URL: one-click
    unsubscribe would silently not exist; a folded `List-Id` comes back with a leading
    space from some parsers. An unfolded line is legal up to 998.
    """

    def fold(self, *, policy: Policy) -> str:
        header = cast(BaseHeader, self)  # the registry mixes BaseHeader in at runtime
        value = str(header)
        if not value.isascii() or len(header.name) + 2 + len(value) > MAX_HEADER_LINE:
            return BaseHeader.fold(header, policy=policy)
        return f"{header.name}: {value}{policy.linesep}"


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("list-unsubscribe", cast(type[BaseHeader], _OneLineHeader))
_HEADERS.map_to_type("list-id", cast(type[BaseHeader], _OneLineHeader))
# The header objects carry their folding with them, so it also holds when aiosmtplib
# flattens the message with a policy of its own.
MESSAGE_POLICY = SMTP.clone(header_factory=_HEADERS)


def header_safe(value: str) -> str:
    """Remove CR/LF and every other control character, collapsing what is left
    onto one trimmed line, so the value can never start a new header."""
    return " ".join(CONTROL_CHARS.sub(" ", value).split())


def required_text(value: str, field: str) -> str:
    """:func:`header_safe`, refusing a value that is empty once cleaned."""
    cleaned = header_safe(value)
    if not cleaned:
        raise ValueError(f"{field} must not be empty")
    return cleaned


def parse_mailbox(value: str, field: str) -> Address:
    """Parse exactly one mailbox; refuse anything that could smuggle a header or
    a second recipient (lists, groups, unparseable junk)."""
    if CONTROL_CHARS.search(value):
        raise ValueError(f"{field} address contains control characters")
    try:
        header = SMTP.header_factory("To", value)
    except (HeaderParseError, IndexError, ValueError) as exc:
        raise ValueError(f"{field} is not a valid email address: {value!r}") from exc
    groups: tuple[Any, ...] = getattr(header, "groups", ())
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    invalid = [d for d in header.defects if not isinstance(d, ObsoleteHeaderDefect)]
    if (
        invalid
        or len(groups) != 1
        or groups[0].display_name is not None
        or len(addresses) != 1
        or not addresses[0].username
        or not addresses[0].domain
    ):
        raise ValueError(f"{field} is not a single valid email address: {value!r}")
    mailbox = addresses[0]
    return Address(
        display_name=header_safe(mailbox.display_name),
        username=mailbox.username,
        domain=mailbox.domain,
    )


def recipient_header(address: str) -> str:
    """The ``To`` value for one recipient: the address itself when it is a plain
    dot-atom address (fast), else whatever the full parser makes of it."""
    if _PLAIN_ADDRESS.match(address) and len(address) <= 320:
        return address
    return str(parse_mailbox(address, "to"))


def list_domain_from_sender(sender: str) -> str:
    """The domain of the sender's address (``localhost`` when it has none)."""
    local, at, domain = parseaddr(header_safe(sender))[1].rpartition("@")
    domain = domain.lower()
    return domain if local and at and _DOMAIN.match(domain) else "localhost"


def valid_domain(value: str) -> str:
    """A lower-case host name fit for ``Message-ID`` and ``List-Id``, or ValueError."""
    domain = value.strip().lower()
    if not _DOMAIN.match(domain):
        raise ValueError(f"not a valid list domain: {value!r}")
    return domain


def list_id(list_domain: str, player_username: str | None = None) -> str:
    """RFC 2919 ``List-Id``: one list per tracked player, so mail clients can filter
    and unsubscribe per player; mail about no player uses the service's list."""
    domain = valid_domain(list_domain)
    if player_username is None:
        return f"{LIST_NAME} <notifications.{domain}>"
    name = required_text(player_username, "player_username")
    label = name.lower()
    if _LIST_LABEL.match(label):
        return f"{name} on {LIST_NAME} <{label}.players.{domain}>"
    # Not a Chess.com username: keep the list per player, but name it by a digest.
    digest = hashlib.sha1(label.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{LIST_NAME} <p-{digest}.players.{domain}>"


def message_id(kind: str, row_id: int, key: str, list_domain: str) -> str:
    """Deterministic ``Message-ID`` for an outbox row: a resend reuses it, so
    receiving systems can drop a duplicate that slipped through a crash."""
    if isinstance(row_id, bool) or not isinstance(row_id, int) or row_id < 0:
        raise ValueError(f"row_id must be a non-negative integer: {row_id!r}")
    if not re.fullmatch(r"[a-z][a-z0-9-]*", kind):
        raise ValueError(f"bad message kind: {kind!r}")
    return f"<{kind}-{row_id}.{key_digest(key)}@{valid_domain(list_domain)}>"


def key_digest(key: str) -> str:
    """The part of a ``Message-ID`` that names the event."""
    return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]


def own_url(value: str, field: str) -> str:
    """Our own links (unsubscribe, confirm...): malformed means a bug, so raise."""
    url = external_url(value)
    if url is None:
        raise ValueError(f"{field} must be an absolute http(s) URL: {value!r}")
    return url


def external_url(value: str) -> str | None:
    """``value`` if it is a plain absolute http(s) URL, else ``None`` (no link)."""
    return plain_http_url(value)
