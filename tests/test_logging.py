"""Logs (structlog over stdlib logging): what operators read, in both formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from app.config import Settings
from app.logging import configure_logging


@pytest.fixture
def render() -> Iterator[Callable[[bool], str]]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)

    def emit(log_json: bool) -> str:
        configure_logging(Settings(database_url="postgresql+asyncpg://u@h/db", log_json=log_json))
        buffer = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
        log = logging.getLogger("worker.poller")
        log.info("live session detected", extra={"player": "hikaru", "queued": 2})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("poll of %s crashed", "hikaru")
        return buffer.getvalue()

    yield emit
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_console_lines_carry_the_extra_fields(render: Callable[[bool], str]) -> None:
    out = render(False)
    first = out.splitlines()[0]
    assert "live session detected" in first and "player=hikaru" in first and "queued=2" in first
    assert "poll of hikaru crashed" in out and "RuntimeError: boom" in out


def test_json_lines_carry_fields_and_a_plain_traceback(render: Callable[[bool], str]) -> None:
    out = render(True)
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["event"] == "live session detected"
    assert (records[0]["player"], records[0]["queued"]) == ("hikaru", 2)
    assert records[0]["level"] == "info" and records[0]["timestamp"].endswith("Z")
    assert records[1]["event"] == "poll of hikaru crashed"
    assert "Traceback (most recent call last)" in records[1]["exception"]
    assert "RuntimeError: boom" in records[1]["exception"]
