"""Errors raised by the Lichess client, retryable or permanent (like app.chesscom.errors)."""

from __future__ import annotations

from typing import ClassVar


class LichessError(Exception):
    """Base class: an answer from Lichess we cannot use."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class LichessUserNotFound(LichessError):
    """404 on ``/api/user/{name}``: Lichess has no such account."""

    def __init__(self, username: str) -> None:
        super().__init__(f"Lichess player {username!r} was not found", status_code=404)
        self.username = username


class LichessRateLimited(LichessError):
    """429: Lichess asks every client to wait a full minute before the next request."""

    retryable = True


class LichessUnavailable(LichessError):
    """5xx, timeout, connection error, or a body that is not the JSON we expect."""

    retryable = True


class LichessTimedOut(LichessUnavailable):
    """No answer within the client's timeout: Lichess may still be serving the request,
    so the next one must not start at once (it would be a second one in flight)."""
