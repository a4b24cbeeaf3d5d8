"""What differs per recipient, and nothing else (issue 9).

A message is rendered once per event and filled in per recipient at the byte level
(quoted-printable lines holding a link are encoded per recipient), and each recipient's
two links are signed by a fast path that must write the library's very tokens. A slip in
either must fail here: two recipients' messages, parsed by the ``email`` package, must
differ exactly in To, Message-ID, List-Unsubscribe and the links of both parts, and
their links must open with the real token verifier, for that subscription and address.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import itsdangerous
import pytest
from itsdangerous import URLSafeTimedSerializer
from markupsafe import escape

from app.emails.messages import EventFacts, Recipient, Site, prepare, recipient_links, spec_for
from app.emails.render import PreparedMessage, Rendered
from app.errors import InvalidToken
from app.notifications.payloads import GameRecord, live_session
from app.tokens import Purpose, TokenClaims, TokenSigner, _compact_json, email_digest
from app.urls import link_url, manage_url
from tests.emails.conftest import SENDER, parse
from tests.emails.test_golden import shape

SECRET = "per-recipient-secret-" + "x" * 32
BASE = "https://helper.example"
DATE = datetime(2026, 11, 21, 20, 30, tzinfo=UTC)
LINKS = {"unsubscribe_url": Purpose.unsubscribe, "manage_url": Purpose.manage}
# (subscription id, address, outbox row id)
ANN = (101, "ann@example.com", 7001)
BOB = (202, "bob.smith+chess@example.org", 7002)


def _prepared(games: list[GameRecord]) -> PreparedMessage:
    facts = EventFacts("live_match", "uuid-1", live_session("hikaru", "Hikaru", 0, games))
    return prepare(facts, Site(SENDER, BASE, "helper.example"))


def _render(
    prepared: PreparedMessage, signer: TokenSigner, who: tuple[int, str, int]
) -> tuple[Rendered, dict[str, str]]:
    """One recipient's message, the way delivery makes it."""
    subscription_id, email, row_id = who
    recipient = Recipient(subscription_id, email, is_active=True, confirmed=True)
    links = recipient_links(spec_for("live_match"), signer, BASE, recipient)
    return prepared.render(to=email, row_id=row_id, links=links, date=DATE), links


def _token(url: str) -> str:
    (token,) = parse_qs(urlsplit(url).query)["token"]
    return token


def _replace(value: Any, swaps: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in swaps.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list | tuple):
        return type(value)(_replace(v, swaps) for v in value)
    if isinstance(value, dict):
        return {k: _replace(v, swaps) for k, v in value.items()}
    return value


def test_each_recipient_gets_their_own_fields_and_nothing_else_differs(
    games: list[GameRecord],
) -> None:
    prepared, signer = _prepared(games), TokenSigner(SECRET)
    rendered = {who: _render(prepared, signer, who) for who in (ANN, BOB)}

    for (subscription_id, email, row_id), (message, links) in rendered.items():
        assert (message.recipient, message.sender) == (email, "noreply@helper.example")
        parsed = parse(message.data)
        assert not parsed.defects
        assert parsed["To"] == email
        assert parsed["Message-ID"] == message.message_id == prepared.message_id(row_id)
        assert parsed["Date"] == format_datetime(DATE)
        assert parsed["List-Id"] == "hikaru on Chess.com Helper <hikaru.players.helper.example>"
        assert parsed["List-Unsubscribe"] == f"<{links['unsubscribe_url']}>"
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text_part, html_part = parsed.get_body(("plain",)), parsed.get_body(("html",))
        assert text_part is not None and html_part is not None
        text, html = text_part.get_content(), html_part.get_content()
        assert f"Manage your emails: {links['manage_url']}\r\n" in text
        assert f"Unsubscribe: {links['unsubscribe_url']}\r\n" in text
        assert f'<a href="{escape(links["manage_url"])}" ' in html
        assert f'<a href="{escape(links["unsubscribe_url"])}" ' in html
        # The links open with the real verifier, for this subscription and address only.
        for name, purpose in LINKS.items():
            claims = signer.verify(purpose, _token(links[name]), max_age=60)
            assert claims == TokenClaims(subscription_id, email_digest(email))
            other = Purpose.confirm if purpose is Purpose.manage else Purpose.manage
            with pytest.raises(InvalidToken):
                signer.verify(other, _token(links[name]), max_age=60)

    # Ann's message with Bob's fields put in is Bob's message: nothing else differs.
    (ann, ann_links), (bob, bob_links) = rendered[ANN], rendered[BOB]
    swaps = {ann.message_id: bob.message_id, ANN[1]: BOB[1]}
    swaps |= {ann_links[name]: bob_links[name] for name in LINKS}
    assert _replace(shape(ann.data), swaps) == shape(bob.data)
    assert shape(ann.data) != shape(bob.data)


def test_links_are_what_the_link_builder_writes() -> None:
    signer = TokenSigner(SECRET)
    for base in (BASE, f"{BASE}/", "http://127.0.0.1:8000/helper"):
        links = recipient_links(
            spec_for("live_match"), signer, base, Recipient(5, "fan@example.com", True, True)
        )
        unsubscribe, manage = _token(links["unsubscribe_url"]), _token(links["manage_url"])
        assert links["unsubscribe_url"] == link_url(base, Purpose.unsubscribe, unsubscribe)
        assert links["manage_url"] == manage_url(base, manage)


@pytest.mark.parametrize("subject", [7, 0, 2**40 + 3, "abc", "ünï"])
@pytest.mark.parametrize("purpose", list(Purpose))
def test_tokens_are_the_librarys_tokens_byte_for_byte(purpose: Purpose, subject: Any) -> None:
    signer = TokenSigner(SECRET)
    with mock.patch("time.time", return_value=1795292000.0):
        ours = signer.sign(purpose, subject, "Fan@Example.com")
        both = signer.sign_all((purpose, Purpose.manage), subject, "Fan@Example.com")
        theirs = URLSafeTimedSerializer(SECRET, salt=f"chesscom-helper.{purpose}").dumps(
            {"s": subject, "e": email_digest("Fan@Example.com")}
        )
    assert ours == both[purpose] == theirs
    claims = signer.verify(purpose, ours, max_age=int(time.time()))
    assert claims == TokenClaims(subject, email_digest("fan@example.com"))


def test_tokens_follow_the_librarys_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing reads the clock of itsdangerous' TimestampSigner for every token (the
    API's tests move it to make expired links), not once."""
    signer = TokenSigner(SECRET)
    fresh = signer.sign(Purpose.manage, 3, "fan@example.com")
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 3600
    )
    old = signer.sign(Purpose.manage, 3, "fan@example.com")
    monkeypatch.undo()
    assert signer.verify(Purpose.manage, fresh, max_age=60).subject == 3
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(Purpose.manage, old, max_age=60)


@pytest.mark.parametrize("subject", [1, 42, 10**18, -5])
def test_claims_json_is_what_json_dumps_writes(subject: int) -> None:
    claims = {"s": subject, "e": email_digest("fan@example.com")}
    expected = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
    assert _compact_json(claims) == expected
