"""Fixtures for the email tests: sample games, a message renderer, a running SMTP fake."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from app.emails.messages import EventFacts, Site, prepare
from app.notifications.payloads import GameRecord, NoPayload, live_session
from tests.fakes.smtp import SMTPServerFake, running_smtp_server

SENDER = "Chess.com Helper <noreply@helper.example>"
UNSUBSCRIBE = "https://helper.example/unsubscribe?token=abc.def"
MANAGE = "https://helper.example/manage?token=man.age"


@pytest.fixture
def smtp_server() -> Iterator[SMTPServerFake]:
    """A fresh in-process SMTP server per test (cheap: a thread and a port)."""
    with running_smtp_server() as server:
        yield server


def record(
    n: int,
    *,
    end: datetime,
    time_class: str = "blitz",
    time_control: str = "180",
    opponent: str = "someone",
    opponent_rating: int | None = None,
    result: str | None = None,
    url: str | None = None,
    player: str = "hikaru",
) -> GameRecord:
    """A game `player` played as white against `opponent`."""
    ended = int(end.timestamp())
    return GameRecord(
        event_id=f"uuid-{n}",
        url=url if url is not None else f"https://www.chess.com/game/live/{n}",
        end_time=ended,
        start_time=ended - 120,
        time_class=time_class,
        time_control=time_control,
        white=player,
        black=opponent,
        black_rating=opponent_rating,
        white_result=result or "",
    )


@pytest.fixture
def games() -> list[GameRecord]:
    """Two live games of one session, deliberately listed out of order."""
    return [
        record(
            1002,
            time_class="bullet",
            time_control="60",
            opponent="someone",
            result="timeout",
            end=datetime(2024, 5, 1, 14, 12, tzinfo=UTC),
        ),
        record(
            1001,
            time_class="blitz",
            time_control="180+2",
            opponent="magnuscarlsen",
            opponent_rating=3250,
            result="win",
            end=datetime(2024, 5, 1, 14, 3, tzinfo=UTC),
        ),
    ]


def parse(data: bytes) -> EmailMessage:
    """What a receiving server sees: the bytes parsed."""
    parsed = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    return parsed


def render_message(
    kind: str,
    payload: Any,
    *,
    key: str,
    links: dict[str, str],
    to: str = "fan@example.com",
    sender: str = SENDER,
    row_id: int = 42,
    player_username: str | None = None,
    public_base_url: str = "https://helper.example",
    list_domain: str | None = "helper.example",
    date: datetime | None = datetime(2024, 5, 1, 14, 30, tzinfo=UTC),
) -> bytes:
    facts = EventFacts(kind, key, payload, player_username=player_username)
    prepared = prepare(facts, Site(sender, public_base_url, list_domain))
    return prepared.render(to=to, row_id=row_id, links=links, date=date).data


def live_bytes(
    games: Sequence[GameRecord],
    *,
    player_username: str = "hikaru",
    player_name: str | None = "Hikaru Nakamura",
    event_id: str = "uuid-of-first-game",
    unsubscribe_url: str = UNSUBSCRIBE,
    manage_url: str = MANAGE,
    **overrides: Any,
) -> bytes:
    payload = live_session(player_username, player_name, 0, games)
    links = {"unsubscribe_url": unsubscribe_url, "manage_url": manage_url}
    return render_message("live_match", payload, key=event_id, links=links, **overrides)


def live(games: Sequence[GameRecord], **overrides: Any) -> EmailMessage:
    """The live_match email for `games`, as received."""
    return parse(live_bytes(games, **overrides))


def confirmation(
    confirm_url: str, *, player_username: str = "hikaru", **overrides: Any
) -> EmailMessage:
    links = {"confirm_url": confirm_url, "manage_url": MANAGE}
    return parse(
        render_message(
            "confirmation",
            NoPayload(),
            key="confirm:abc",
            links=links,
            player_username=player_username,
            **overrides,
        )
    )


def erase_confirmation(erase_url: str, **overrides: Any) -> EmailMessage:
    links = {"erase_url": erase_url, "manage_url": MANAGE}
    return parse(
        render_message("erase_request", NoPayload(), key="erase:def", links=links, **overrides)
    )
