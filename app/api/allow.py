"""405 answers name every method of the path in `Allow` (RFC 9110 §15.5.6).

Routing tries one route per method, so the 405 it raises names only the methods of
the first route whose path matched: `OPTIONS /players` said `Allow: POST`, and
`/subscribers/erase` answered with the methods of `/subscribers/{email}`. The methods
come from the OpenAPI document instead (the contract clients read), taking the most
specific path template that matches: a literal segment beats a parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

_PARAM = re.compile(r"\{[^}/]+\}")
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@dataclass(frozen=True, slots=True)
class _PathMethods:
    pattern: re.Pattern[str]
    params: int
    methods: frozenset[str]


def _compile(app: FastAPI) -> list[_PathMethods]:
    entries = []
    for template, item in app.openapi().get("paths", {}).items():
        parts = _PARAM.split(template)
        regex = "[^/]+".join(re.escape(p) for p in parts)
        methods = frozenset(m.upper() for m in item if m in _METHODS)
        entries.append(_PathMethods(re.compile(regex), len(parts) - 1, methods))
    return entries


def allowed_methods(app: FastAPI, path: str) -> frozenset[str] | None:
    """The documented methods of the most specific path template matching `path`."""
    table: list[_PathMethods] | None = getattr(app.state, "allow_table", None)
    if table is None:
        table = app.state.allow_table = _compile(app)
    matches = [e for e in table if e.pattern.fullmatch(path)]
    if not matches:
        return None
    fewest = min(e.params for e in matches)
    return frozenset().union(*(e.methods for e in matches if e.params == fewest))


def install_allow_header(app: FastAPI) -> None:
    """Register the 405 handler; it defers to the app's HTTPException handler for the body."""

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        methods = allowed_methods(request.app, request.url.path)
        if methods:
            headers["Allow"] = ", ".join(sorted(methods))
        handler = request.app.exception_handlers[StarletteHTTPException]
        response: Response = await handler(
            request, StarletteHTTPException(405, exc.detail, headers)
        )
        return response

    app.add_exception_handler(405, method_not_allowed)
