"""The one error handler: domain errors (`app.errors`) and framework errors as `{"detail": ...}`,
or as a small page for a browser on an email-link page; plus the OpenAPI error entries."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.pages.render import (
    LinkRefused,
    PageAnswer,
    invalid_link_page,
    is_page_request,
    render_page,
)
from app.errors import AppError

log = logging.getLogger(__name__)

_BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's words for an unreadable body


class ErrorBody(BaseModel):
    """The one error shape of the API."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "Player 'nobody' is not tracked"}]}
    )

    detail: str


class ValidationErrorItem(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ValidationErrorBody(BaseModel):
    """422: a list of field errors from validation, or one sentence from a rule."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": [
                        {
                            "type": "string_pattern_mismatch",
                            "loc": ["body", "username"],
                            "msg": "String should match pattern '^[A-Za-z0-9_-]{3,25}$'",
                        }
                    ]
                }
            ]
        }
    )

    detail: list[ValidationErrorItem] | str


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


# What a browser on one of the email-link pages is told, by status, when something fails.
_PAGE_HEADINGS = {
    400: "This link does not work",
    404: "Not found",
    413: "Request too large",
    422: "This link is incomplete",
    429: "Please wait a moment",
    500: "Something went wrong",
    503: "Please try again shortly",
}
_PAGE_MESSAGES = {
    422: "The link is missing part of its address. Open it again from the email, in full.",
    429: "Too many requests came from your network in a short time. "
    "Wait a minute, then press the button again.",
    500: "We could not finish your request. Nothing was changed; please try again later.",
}


def _error(
    request: Request,
    status_code: int,
    detail: object,
    headers: dict[str, str] | None = None,
) -> Response:
    """The API's `{"detail": ...}`, or a small page for a browser on an email-link page."""
    if is_page_request(request):
        message = _PAGE_MESSAGES.get(status_code, detail if isinstance(detail, str) else "")
        page = render_page(
            "error.html",
            status_code,
            heading=_PAGE_HEADINGS.get(status_code, "Something went wrong"),
            message=message,
        )
        page.headers.update(headers or {})
        return page
    return JSONResponse({"detail": detail}, status_code, headers=headers)


def page_error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """As `error_responses`, for the email-link pages: browsers get the error as a page."""
    entries = error_responses(*codes)
    for entry in entries.values():
        entry["content"] = {"text/html": {}}
    return entries


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return _error(request, exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(LinkRefused)
    async def _link_refused(request: Request, exc: LinkRefused) -> Response:
        return invalid_link_page(exc.detail)

    @app.exception_handler(PageAnswer)
    async def _page_answer(request: Request, exc: PageAnswer) -> Response:
        return exc.response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # Echoing the rejected input back could reflect hostile payloads; keep type/loc/msg.
        errors = [
            {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
            for e in exc.errors()
        ]
        return _error(request, 422, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
            # FastAPI answers 400 when a JSON body is not even text (bad UTF-8): it is
            # malformed input like any other, so 422 in the documented shape.
            errors = [{"type": "json_invalid", "loc": ["body"], "msg": "Body is not valid JSON"}]
            return _error(request, 422, errors)
        return _error(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def _database_down(request: Request, exc: Exception) -> Response:
        # Losing the database is an outage, not a bug: say so, and say when to retry.
        if isinstance(exc, DBAPIError) and not _is_connectivity(exc):
            return await _unexpected(request, exc)
        log.error(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return _error(
            request,
            503,
            "The database is unavailable; try again shortly",
            {"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(request, 500, "Internal server error")


def _is_connectivity(exc: DBAPIError) -> bool:
    return (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or (isinstance(exc.orig, OSError))
    )
