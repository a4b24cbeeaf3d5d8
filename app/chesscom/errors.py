"""Errors raised by the Chess.com client, split into retryable and permanent ones.

Callers decide what to do from the class (and `retryable`), never from status codes:
the API maps them to 404/503, the worker to back-off, closing, or concurrency cuts.
"""

from __future__ import annotations

from typing import ClassVar


# app.emails.mailer's MailError family has the same shape for SMTP: each client keeps its own
# errors, retryable or permanent, next to the code that raises them (STYLE habit 11).
class ChessComError(Exception):
    """Base class: an answer from Chess.com we cannot use."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class PlayerNotFound(ChessComError):
    """404 (no such player) or 410 (`gone=True`: never ask about this player again)."""

    def __init__(self, username: str, *, gone: bool = False) -> None:
        what = "is gone" if gone else "was not found"
        super().__init__(f"Chess.com player {username!r} {what}", status_code=410 if gone else 404)
        self.username = username
        self.gone = gone


class Forbidden(ChessComError):
    """403: Chess.com refuses our User-Agent (no contact info) or blocked us. Permanent."""


class RateLimited(ChessComError):
    """429: too many parallel requests. Honour `retry_after` (seconds) when given."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=429)
        self.retry_after = retry_after


class ChessComUnavailable(ChessComError):
    """5xx, timeout, connection error, or a body that is not the JSON we expect."""

    retryable = True
