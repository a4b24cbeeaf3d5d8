"""Domain errors: each carries its HTTP status, but nothing here imports the web framework.

The worker imports these (through the services and the token signer), so they stay free of
FastAPI/Starlette; `app.api.errors` renders them as `{"detail": ...}` or as a page.
"""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    default_detail = "Bad request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        self.detail = detail or self.default_detail
        if headers is not None:
            self.headers = headers
        super().__init__(self.detail)


# One small class per failure. They look alike on purpose (a status, default words, maybe
# headers, and nothing else): the duplicate-code scan lists them, and that is fine.


class NotFound(AppError):
    status_code = 404
    default_detail = "Not found"


class Unprocessable(AppError):
    status_code = 422
    default_detail = "Malformed input"


class Unauthorized(AppError):
    status_code = 401
    default_detail = "Missing or invalid admin token"
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidToken(AppError):
    status_code = 400
    default_detail = "This link is invalid or has expired"


class UpstreamUnavailable(AppError):
    status_code = 503
    default_detail = "Chess.com cannot be reached right now; try again later"
    headers = {"Retry-After": "30"}
