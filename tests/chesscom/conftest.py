"""Fixtures: a fresh Chess.com simulator and a client talking to it in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.chesscom.client import ChessComClient
from tests.fakes.chesscom import ChessComSimulator

USER_AGENT = "chesscom-helper/0.1 (+https://example.org; contact: tests@example.com)"
BASE_URL = "http://chesscom.test/pub"


def make_client(simulator: ChessComSimulator, **kwargs: Any) -> ChessComClient:
    """A client whose requests go straight into the simulator's ASGI app."""
    kwargs.setdefault("user_agent", USER_AGENT)
    kwargs.setdefault("timeout", 2.0)
    return ChessComClient(BASE_URL, transport=simulator.transport(), **kwargs)


@pytest.fixture
def simulator() -> ChessComSimulator:
    return ChessComSimulator()


@pytest.fixture
async def client(simulator: ChessComSimulator) -> AsyncIterator[ChessComClient]:
    async with make_client(simulator) as chesscom:
        yield chesscom
