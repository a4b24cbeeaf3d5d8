"""Fixtures for the email tests: sample games and a running SMTP fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.emails.render import GameSummary
from tests.fakes.smtp import SMTPServerFake, running_smtp_server


@pytest.fixture
def smtp_server() -> Iterator[SMTPServerFake]:
    """A fresh in-process SMTP server per test (cheap: a thread and a port)."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def games() -> list[GameSummary]:
    """Two live games of one session, deliberately listed out of order."""
    return [
        GameSummary(
            url="https://www.chess.com/game/live/1002",
            time_class="bullet",
            time_control="60",
            opponent="someone",
            opponent_rating=None,
            result="timeout",
            end_time=datetime(2024, 5, 1, 14, 12, tzinfo=UTC),
        ),
        GameSummary(
            url="https://www.chess.com/game/live/1001",
            time_class="blitz",
            time_control="180+2",
            opponent="magnuscarlsen",
            opponent_rating=3250,
            result="win",
            end_time=datetime(2024, 5, 1, 14, 3, tzinfo=UTC),
        ),
    ]
