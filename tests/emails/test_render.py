"""Rendering of the notification, confirmation and erase emails (SPEC §7)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtplib.email import flatten_message

from app.emails.render import (
    MAX_LISTED_GAMES,
    GameSummary,
    _header_safe,
    describe_result,
    format_time_control,
    list_domain_from_sender,
    message_id,
    render_confirmation,
    render_erase_confirmation,
    render_live_match,
)

SENDER = "Chess.com Helper <noreply@helper.example>"
UNSUBSCRIBE = "https://helper.example/unsubscribe?token=abc.def"
HOSTILE = "evil\r\nBcc: victim@example.com"


def live(games: list[GameSummary], **overrides: Any) -> EmailMessage:
    arguments: dict[str, Any] = {
        "to": "fan@example.com",
        "sender": SENDER,
        "player_username": "hikaru",
        "player_name": "Hikaru Nakamura",
        "games": games,
        "event_id": "uuid-of-first-game",
        "row_id": 42,
        "unsubscribe_url": UNSUBSCRIBE,
        "public_base_url": "https://helper.example",
        "list_domain": "helper.example",
        "date": datetime(2024, 5, 1, 14, 30, tzinfo=UTC),
    }
    arguments.update(overrides)
    return render_live_match(**arguments)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def reparse(message: EmailMessage) -> EmailMessage:
    """What a receiving server sees: the serialised bytes, parsed again."""
    parsed = BytesParser(policy=policy.default).parsebytes(bytes(message))
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_live_match_subject_and_multipart(games: list[GameSummary]) -> None:
    message = live(games)
    assert message["Subject"] == "hikaru started playing live chess on Chess.com"
    assert message.get_content_type() == "multipart/alternative"
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/html"]


def test_live_match_headers(games: list[GameSummary]) -> None:
    message = reparse(live(games))
    assert message["From"].addresses[0].addr_spec == "noreply@helper.example"
    assert message["To"] == "fan@example.com"
    assert message["Date"].datetime == datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    assert message["List-Id"] == "Chess.com Helper <notifications.helper.example>"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].startswith("<notification-42.")
    assert message["Message-ID"].endswith("@helper.example>")


def test_list_unsubscribe_goes_on_the_wire_as_a_url_mail_clients_can_read(
    games: list[GameSummary],
) -> None:
    # RFC 2369 wants `<URL>`; folded at 78 columns, the email package would turn the
    # long token URL into an RFC 2047 encoded word (`=?utf-8?q?=3Chttp...`) that
    # clients do not read as a URL. What aiosmtplib puts on the wire must be plain.
    long_url = UNSUBSCRIBE + "&pad=" + "x" * 120
    message = live(games, unsubscribe_url=long_url)
    for raw in (flatten_message(message), message.as_bytes()):
        headers = raw.split(b"\r\n\r\n" if b"\r\n" in raw else b"\n\n", 1)[0]
        assert f"List-Unsubscribe: <{long_url}>".encode() in headers.splitlines()
        assert b"=?" not in headers.split(b"List-Unsubscribe:", 1)[1].splitlines()[0]
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in headers.splitlines()


def test_message_id_is_deterministic_per_row_and_event(games: list[GameSummary]) -> None:
    first = live(games)["Message-ID"]
    later = live(games[:1], date=datetime(2025, 1, 1, tzinfo=UTC), to="x@example.com")
    assert later["Message-ID"] == first
    assert live(games, row_id=43)["Message-ID"] != first
    assert live(games, event_id="another-session")["Message-ID"] != first
    assert message_id("notification", 42, "uuid-of-first-game", "helper.example") == first


@pytest.mark.parametrize("row_id", [-1, True, "7"])
def test_message_id_refuses_bad_row_ids(row_id: Any) -> None:
    with pytest.raises(ValueError):
        message_id("notification", row_id, "event", "helper.example")


def test_games_are_listed_in_both_parts(games: list[GameSummary]) -> None:
    text, html = parts(live(games))
    for body in (text, html):
        assert "magnuscarlsen (3250)" in body
        assert "3+2" in body and "1 min" in body
        assert "Won" in body and "Lost on time" in body
        assert "https://www.chess.com/game/live/1001" in body
        assert "https://www.chess.com/game/live/1002" in body
        assert "https://www.chess.com/member/hikaru" in body
        assert UNSUBSCRIBE.replace("&", "&amp;") in body
        assert "Hikaru Nakamura" in body
    # Oldest first: the session's opening game leads.
    assert text.index("live/1001") < text.index("live/1002")
    assert "Blitz" in text and "Bullet" in text


def test_long_sessions_are_truncated(games: list[GameSummary]) -> None:
    many = [
        GameSummary(
            url=f"https://www.chess.com/game/live/{n}",
            time_class="bullet",
            time_control="60",
            opponent=f"opponent{n}",
            opponent_rating=1500,
            result="win",
            end_time=datetime(2024, 5, 1, tzinfo=UTC) + timedelta(minutes=n),
        )
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


def test_chesscom_text_is_escaped_in_html(games: list[GameSummary]) -> None:
    script = "<script>alert(1)</script>"
    hostile_game = GameSummary(
        url="https://www.chess.com/game/live/1",
        time_class="<b>blitz</b>",
        time_control="180",
        opponent=script,
        opponent_rating=1,
        result=script,
        end_time=datetime(2024, 5, 1, tzinfo=UTC),
    )
    text, html = parts(live([hostile_game], player_name=script))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The text part is not HTML: it shows the name as it is.
    assert script in text


def test_only_http_links_are_written() -> None:
    sneaky = GameSummary(
        url="javascript:alert(document.cookie)",
        time_class="blitz",
        time_control="180",
        opponent="x",
        opponent_rating=None,
        result=None,
        end_time=datetime(2024, 5, 1, tzinfo=UTC),
    )
    text, html = parts(live([sneaky]))
    assert "javascript" not in text and "javascript" not in html


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "/relative", "https://x.example/a b", 'https://x"/><script>']
)
def test_own_links_must_be_absolute_http(games: list[GameSummary], url: str) -> None:
    with pytest.raises(ValueError):
        live(games, unsubscribe_url=url)


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
    assert _header_safe(value) == expected


def test_hostile_username_cannot_inject_headers(games: list[GameSummary]) -> None:
    message = live(games, player_username=HOSTILE, player_name=HOSTILE)
    received = reparse(message)
    assert received["Bcc"] is None
    assert "\n" not in received["Subject"] and "\r" not in received["Subject"]
    assert (
        received["Subject"]
        == "evil Bcc: victim@example.com started playing live chess on Chess.com"
    )
    assert b"\r\nBcc:" not in bytes(message)


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
def test_bad_addresses_are_refused(games: list[GameSummary], field: str, address: str) -> None:
    with pytest.raises(ValueError):
        live(games, **{field: address})


def test_list_domain_defaults_to_the_senders_domain(games: list[GameSummary]) -> None:
    message = live(games, list_domain=None, sender="Helper <bot@Mail.Example.org>")
    assert message["List-Id"] == "Chess.com Helper <notifications.mail.example.org>"
    assert message["Message-ID"].endswith("@mail.example.org>")
    assert list_domain_from_sender("Chess.com Helper <noreply@localhost>") == "localhost"
    assert list_domain_from_sender("garbage") == "localhost"
    with pytest.raises(ValueError):
        live(games, list_domain="evil.example>\r\nBcc: x")


def test_serialisation_is_smtp_clean(games: list[GameSummary]) -> None:
    data = bytes(live(games, player_name="Ünïcödé ♞ " * 20))
    assert data.count(b"\n") == data.count(b"\r\n")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    data.decode("ascii")  # 8-bit content is transfer-encoded


def test_html_is_self_contained(games: list[GameSummary]) -> None:
    _, html = parts(live(games))
    assert 'name="viewport"' in html
    assert "<img" not in html and "<link" not in html and "<script" not in html
    assert "max-width:560px" in html


def test_confirmation_email() -> None:
    confirm = "https://helper.example/api/v1/subscriptions/confirm?token=t0k"
    message = render_confirmation(
        to="fan@example.com",
        sender=SENDER,
        player_username="Hikaru",
        confirm_url=confirm,
        row_id=7,
        list_domain="helper.example",
    )
    assert message["Subject"] == "Confirm your subscription to Hikaru"
    assert message["Message-ID"].startswith("<confirmation-7.")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Id"] == "Chess.com Helper <notifications.helper.example>"
    assert message["List-Unsubscribe"] is None
    text, html = parts(message)
    for body in (text, html):
        assert confirm in body
        assert "did not ask" in body
    again = render_confirmation(
        to="fan@example.com",
        sender=SENDER,
        player_username="hikaru",
        confirm_url=confirm,
        row_id=7,
        list_domain="helper.example",
    )
    assert again["Message-ID"] == message["Message-ID"]


def test_confirmation_can_carry_list_unsubscribe() -> None:
    message = render_confirmation(
        to="fan@example.com",
        sender=SENDER,
        player_username="hikaru",
        confirm_url="https://helper.example/c?token=1",
        row_id=7,
        unsubscribe_url=UNSUBSCRIBE,
    )
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_erase_confirmation_email() -> None:
    erase = "https://helper.example/erase?token=xyz"
    message = render_erase_confirmation(
        to="fan@example.com",
        sender=SENDER,
        erase_url=erase,
        row_id=9,
    )
    assert message["Subject"] == "Confirm deletion of your data"
    assert message["Message-ID"].startswith("<erase-9.")
    assert message["Message-ID"].endswith("@helper.example>")
    assert message["List-Unsubscribe"] is None
    text, html = parts(message)
    assert erase in text and erase in html
    assert "ignore this email" in text


def test_game_summary_json_round_trip(games: list[GameSummary]) -> None:
    stored = json.loads(json.dumps([game.to_json() for game in games]))
    assert [GameSummary.from_json(item) for item in stored] == games
    assert stored[1]["end_time"] == "2024-05-01T14:03:00+00:00"


def test_game_summary_normalises_time_zones() -> None:
    data = GameSummary(
        url="u",
        time_class="blitz",
        time_control="180",
        opponent="o",
        opponent_rating=None,
        result=None,
        end_time=datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=2))),
    ).to_json()
    assert data["end_time"] == "2024-05-01T14:00:00+00:00"
    data["end_time"] = 1714572000
    assert GameSummary.from_json(data).end_time == datetime(2024, 5, 1, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"url": 1, "time_class": "b", "time_control": "1", "opponent": "o", "end_time": 0},
        {"url": "u", "time_class": "b", "time_control": "1", "opponent": "o", "end_time": None},
        {
            "url": "u",
            "time_class": "b",
            "time_control": "1",
            "opponent": "o",
            "opponent_rating": "2000",
            "end_time": 0,
        },
    ],
)
def test_game_summary_from_json_rejects_malformed(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GameSummary.from_json(broken)
