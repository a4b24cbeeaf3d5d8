"""Rendering of the notification, confirmation and erase emails (SPEC §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from app.emails.chess import describe_result, format_time_control
from app.emails.headers import header_safe, list_domain_from_sender, list_id, message_id
from app.emails.messages import MAX_LISTED_GAMES, EventFacts, Site, prepare
from app.notifications.payloads import GameRecord, live_session
from tests.emails.conftest import (
    MANAGE,
    SENDER,
    UNSUBSCRIBE,
    confirmation,
    erase_confirmation,
    live,
    live_bytes,
    record,
)

HOSTILE = "evil\r\nBcc: victim@example.com"


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def test_live_match_subject_and_multipart(games: list[GameRecord]) -> None:
    message = live(games)
    assert message["Subject"] == "hikaru started playing live chess on Chess.com"
    assert message.get_content_type() == "multipart/alternative"
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/html"]
    assert not message.defects and not any(p.defects for p in message.iter_parts())


def test_live_match_headers(games: list[GameRecord]) -> None:
    message = live(games)
    assert message["From"].addresses[0].addr_spec == "noreply@helper.example"
    assert message["To"] == "fan@example.com"
    assert message["Date"].datetime == datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].startswith("<notification-42.")
    assert message["Message-ID"].endswith("@helper.example>")


def test_list_id_names_the_tracked_player(games: list[GameRecord]) -> None:
    # One list per player (SPEC §7): mail clients filter and unsubscribe per player.
    assert live(games)["List-Id"] == "hikaru on Chess.com Helper <hikaru.players.helper.example>"
    anna = [record(1, end=datetime(2024, 5, 1, tzinfo=UTC), player="Anna_Cramling")]
    assert (
        live(anna, player_username="Anna_Cramling")["List-Id"]
        == "Anna_Cramling on Chess.com Helper <anna_cramling.players.helper.example>"
    )
    assert list_id("helper.example") == "Chess.com Helper <notifications.helper.example>"
    # Something that is no Chess.com username still gets a list of its own, by digest.
    odd = list_id("helper.example", "ünïcödé name")
    assert odd.startswith("Chess.com Helper <p-") and odd.endswith(".players.helper.example>")


def test_list_unsubscribe_goes_on_the_wire_as_a_url_mail_clients_can_read(
    games: list[GameRecord],
) -> None:
    # RFC 2369 wants `<URL>`; folded at 78 columns, the email package would turn the
    # long token URL into an RFC 2047 encoded word (`=?utf-8?q?=3Chttp...`) that
    # clients do not read as a URL. What goes on the wire must be plain.
    long_url = UNSUBSCRIBE + "&pad=" + "x" * 120
    raw = live_bytes(games, unsubscribe_url=long_url)
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert f"List-Unsubscribe: <{long_url}>".encode() in headers.splitlines()
    assert b"=?" not in headers.split(b"List-Unsubscribe:", 1)[1].splitlines()[0]
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in headers.splitlines()


def test_message_id_is_deterministic_per_row_and_event(games: list[GameRecord]) -> None:
    first = live(games)["Message-ID"]
    later = live(games[:1], date=datetime(2025, 1, 1, tzinfo=UTC), to="x@example.com")
    assert later["Message-ID"] == first
    assert live(games, row_id=43)["Message-ID"] != first
    assert live(games, event_id="another-session")["Message-ID"] != first
    assert message_id("notification", 42, "uuid-of-first-game", "helper.example") == first


@pytest.mark.parametrize("row_id", [-1, True, "7"])
def test_message_id_refuses_bad_row_ids(row_id: Any, games: list[GameRecord]) -> None:
    with pytest.raises(ValueError):
        message_id("notification", row_id, "event", "helper.example")
    with pytest.raises(ValueError):
        live(games, row_id=row_id)


def test_games_are_listed_in_both_parts(games: list[GameRecord]) -> None:
    text, html = parts(live(games))
    for body in (text, html):
        assert "magnuscarlsen (3250)" in body
        assert "3+2" in body and "1 min" in body
        assert "Won" in body and "Lost on time" in body
        assert "https://www.chess.com/game/live/1001" in body
        assert "https://www.chess.com/game/live/1002" in body
        assert "https://www.chess.com/member/hikaru" in body
        assert UNSUBSCRIBE in body and MANAGE in body
        assert "Hikaru Nakamura" in body
    # Oldest first: the session's opening game leads.
    assert text.index("live/1001") < text.index("live/1002")
    assert "Blitz" in text and "Bullet" in text


def test_games_are_told_from_the_tracked_players_side() -> None:
    end = datetime(2024, 5, 1, tzinfo=UTC)
    as_black = GameRecord(
        "u", "https://www.chess.com/game/live/9", int(end.timestamp()), 0, "rapid", "600",
        white="magnuscarlsen", black="Hikaru", white_rating=2830, black_rating=2790,
        white_result="win", black_result="checkmated",
    )  # fmt: skip
    text, _ = parts(live([as_black]))
    assert "vs. magnuscarlsen (2830)" in text and "Lost by checkmate" in text


def test_long_sessions_are_truncated() -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    many = [
        record(n, opponent=f"opponent{n}", result="win", end=start + timedelta(minutes=n))
        for n in range(MAX_LISTED_GAMES + 3)
    ]
    text, html = parts(live(many))
    assert f"opponent{MAX_LISTED_GAMES - 1}" in text
    assert f"opponent{MAX_LISTED_GAMES}" not in text
    assert "and 3 more" in text and "and 3 more" in html


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("180+2", "3+2"),
        ("180", "3 min"),
        ("600", "10 min"),
        ("60", "1 min"),
        ("90", "1.5 min"),
        ("30", "30 sec"),
        ("900+10", "15+10"),
        ("60+1", "1+1"),
        ("15+1", "15s+1"),
        ("1/86400", "1 day"),
        ("1/259200", "3 days"),
        ("1/43200", "12 hours"),
        ("-", "-"),
        ("weird", "weird"),
    ],
)
def test_time_controls_are_human_friendly(raw: str, shown: str) -> None:
    assert format_time_control(raw) == shown


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("win", "Won"),
        ("resigned", "Lost by resignation"),
        ("agreed", "Draw by agreement"),
        ("newcode", "newcode"),
        (None, None),
    ],
)
def test_results_are_described(code: str | None, words: str | None) -> None:
    assert describe_result(code) == words


def test_chesscom_text_is_escaped_in_html() -> None:
    script = "<script>alert(1)</script>"
    hostile_game = record(
        1, time_class="<b>blitz</b>", opponent=script, opponent_rating=1, result=script,
        end=datetime(2024, 5, 1, tzinfo=UTC),
    )  # fmt: skip
    text, html = parts(live([hostile_game], player_name=script))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The text part is not HTML: it shows the name as it is.
    assert script in text


def test_links_are_escaped_in_html_and_plain_in_text(games: list[GameRecord]) -> None:
    url = "https://helper.example/manage?token=a&b=c"
    text, html = parts(live(games, manage_url=url))
    assert url in text
    assert "https://helper.example/manage?token=a&amp;b=c" in html and url not in html


def test_only_http_links_are_written() -> None:
    sneaky = record(
        1, url="javascript:alert(document.cookie)", end=datetime(2024, 5, 1, tzinfo=UTC)
    )
    text, html = parts(live([sneaky]))
    assert "javascript" not in text and "javascript" not in html


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "/relative", "https://x.example/a b", 'https://x"/><script>']
)
def test_own_links_must_be_absolute_http(games: list[GameRecord], url: str) -> None:
    with pytest.raises(ValueError):
        live(games, unsubscribe_url=url)
    with pytest.raises(ValueError):
        live(games, manage_url=url)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (HOSTILE, "evil Bcc: victim@example.com"),
        ("a\rb\nc", "a b c"),
        ("tab\there", "tab here"),
        ("nul\x00byte", "nul byte"),
        ("line\u2028separator\u2029", "line separator"),
        ("bidi\u202etxet", "bidi txet"),
        ("  Ünïcödé ok  ", "Ünïcödé ok"),
    ],
)
def test_header_safe_strips_control_characters(value: str, expected: str) -> None:
    assert header_safe(value) == expected


def test_hostile_username_cannot_inject_headers(games: list[GameRecord]) -> None:
    raw = live_bytes(games, player_username=HOSTILE, player_name=HOSTILE)
    received = live(games, player_username=HOSTILE, player_name=HOSTILE)
    assert received["Bcc"] is None
    assert "\n" not in received["Subject"] and "\r" not in received["Subject"]
    assert (
        received["Subject"]
        == "evil Bcc: victim@example.com started playing live chess on Chess.com"
    )
    assert b"\r\nBcc:" not in raw
    assert received["List-Id"].startswith("Chess.com Helper <p-")


@pytest.mark.parametrize("field", ["to", "sender"])
@pytest.mark.parametrize(
    "address",
    [
        "fan@example.com\r\nBcc: victim@example.com",
        "fan@example.com\nX-Evil: 1",
        "one@example.com, two@example.com",
        "group: one@example.com;",
        "not-an-address",
        "",
    ],
)
def test_bad_addresses_are_refused(games: list[GameRecord], field: str, address: str) -> None:
    with pytest.raises(ValueError):
        live(games, **{field: address})


def test_list_domain_defaults_to_the_senders_domain(games: list[GameRecord]) -> None:
    message = live(games, list_domain=None, sender="Helper <bot@Mail.Example.org>")
    assert message["List-Id"] == "hikaru on Chess.com Helper <hikaru.players.mail.example.org>"
    assert message["Message-ID"].endswith("@mail.example.org>")
    assert list_domain_from_sender("Chess.com Helper <noreply@localhost>") == "localhost"
    assert list_domain_from_sender("garbage") == "localhost"
    with pytest.raises(ValueError):
        live(games, list_domain="evil.example>\r\nBcc: x")


def test_serialisation_is_smtp_clean(games: list[GameRecord]) -> None:
    data = live_bytes(games, player_name="Ünïcödé ♞ " * 20)
    assert data.count(b"\n") == data.count(b"\r\n")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    data.decode("ascii")  # 8-bit content is transfer-encoded
    text, html = parts(live(games, player_name="Ünïcödé ♞ " * 20))
    assert "Ünïcödé ♞" in text and "Ünïcödé ♞" in html


def test_html_is_self_contained(games: list[GameRecord]) -> None:
    _, html = parts(live(games))
    assert 'name="viewport"' in html
    assert "<img" not in html and "<link" not in html and "<script" not in html
    assert "max-width:560px" in html


def test_one_preparation_serves_every_recipient(games: list[GameRecord]) -> None:
    """The shared part is rendered once; recipients differ only where they must."""
    site = Site(SENDER, "https://helper.example", "helper.example")
    prepared = prepare(
        EventFacts("live_match", "uuid-1", live_session("hikaru", None, 0, games)), site
    )
    date = datetime(2024, 5, 1, tzinfo=UTC)
    one, two = (
        prepared.render(
            to=f"fan{n}@example.com",
            row_id=n,
            links={"unsubscribe_url": f"{UNSUBSCRIBE}{n}", "manage_url": f"{MANAGE}{n}"},
            date=date,
        )
        for n in (1, 2)
    )
    assert (one.recipient, one.sender) == ("fan1@example.com", "noreply@helper.example")
    assert one.message_id != two.message_id
    lines_one, lines_two = one.data.split(b"\r\n"), two.data.split(b"\r\n")
    differing = [(a, b) for a, b in zip(lines_one, lines_two, strict=True) if a != b]
    assert all(
        a.startswith((b"To:", b"Message-ID:", b"List-Unsubscribe:"))
        or b"token=3D" in a
        or b"fan1" in a
        for a, _ in differing
    ), differing


def test_confirmation_email() -> None:
    confirm = "https://helper.example/api/v1/subscriptions/confirm?token=t0k"
    message = confirmation(confirm, player_username="Hikaru", row_id=7)
    assert message["Subject"] == "Confirm your subscription to Hikaru"
    assert message["Message-ID"].startswith("<confirmation-7.")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Id"] == "Hikaru on Chess.com Helper <hikaru.players.helper.example>"
    assert message["List-Unsubscribe"] is None
    text, html = parts(message)
    for body in (text, html):
        assert confirm in body
        assert "did not ask" in body
        assert MANAGE in body
    again = confirmation(confirm, player_username="hikaru", row_id=7)
    assert again["Message-ID"] == message["Message-ID"]


def test_erase_confirmation_email() -> None:
    erase = "https://helper.example/erase?token=xyz"
    message = erase_confirmation(erase, row_id=9)
    assert message["Subject"] == "Confirm deletion of your data"
    assert message["Message-ID"].startswith("<erase-9.")
    assert message["Message-ID"].endswith("@helper.example>")
    assert message["List-Unsubscribe"] is None
    assert message["List-Id"] == "Chess.com Helper <notifications.helper.example>"
    text, html = parts(message)
    assert erase in text and erase in html
    assert "ignore this email" in text


def test_signed_links_are_the_librarys_tokens() -> None:
    """Signing skips itsdangerous' zlib attempt (the cost of a token) but writes the
    very token the library would, and verifies as before."""
    import time
    from unittest import mock

    from itsdangerous import URLSafeTimedSerializer

    from app.tokens import Purpose, TokenSigner, email_digest

    signer = TokenSigner("k" * 40)
    with mock.patch("time.time", return_value=1795292000.0):
        ours = signer.sign(Purpose.manage, 7, "fan@example.com")
        theirs = URLSafeTimedSerializer("k" * 40, salt="chesscom-helper.manage").dumps(
            {"s": 7, "e": email_digest("fan@example.com")}
        )
    assert ours == theirs
    claims = signer.verify(Purpose.manage, ours, max_age=int(time.time()))
    assert (claims.subject, claims.email_digest) == (7, email_digest("fan@example.com"))
