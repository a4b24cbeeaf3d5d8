"""Domain errors carry their HTTP status; one handler renders them as {"detail": ...}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's words for an unreadable body


class ErrorBody(BaseModel):
    """The one error shape of the API."""

    detail: str


class ValidationErrorItem(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ValidationErrorBody(BaseModel):
    """422: a list of field errors from validation, or one sentence from a rule."""

    detail: list[ValidationErrorItem] | str


class AppError(Exception):
    status_code = 400
    default_detail = "Bad request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        self.detail = detail or self.default_detail
        if headers is not None:
            self.headers = headers
        super().__init__(self.detail)


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


class PayloadTooLarge(AppError):
    status_code = 413
    default_detail = "Request body too large"


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` entries for the given error codes, all with the one error shape."""
    descriptions = {
        400: "Invalid or expired token",
        401: "Missing or invalid admin token",
        404: "Not found",
        413: "Request body too large",
        422: "Malformed input",
        429: "Rate limit exceeded (see Retry-After)",
        503: "Chess.com or the database cannot be reached",
    }
    return {
        code: {
            "model": ValidationErrorBody if code == 422 else ErrorBody,
            "description": descriptions[code],
        }
        for code in codes
    }


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Echoing the rejected input back could reflect hostile payloads; keep type/loc/msg.
        errors = [
            {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
            # FastAPI answers 400 when a JSON body is not even text (bad UTF-8): it is
            # malformed input like any other, so 422 in the documented shape.
            errors = [{"type": "json_invalid", "loc": ["body"], "msg": "Body is not valid JSON"}]
            return JSONResponse({"detail": errors}, 422)
        return JSONResponse(
            {"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        # Losing the database is an outage, not a bug: say so, and say when to retry.
        if isinstance(exc, DBAPIError) and not _is_connectivity(exc):
            return await _unexpected(request, exc)
        log.error(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return JSONResponse(
            {"detail": "The database is unavailable; try again shortly"},
            503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "Internal server error"}, 500)


def _is_connectivity(exc: DBAPIError) -> bool:
    return (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or (isinstance(exc.orig, OSError))
    )
