"""Prometheus metrics and the access log of the API process (one pure ASGI layer)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access_log import log_access, request_line

HTTP_REQUESTS = Counter(
    "chesscom_helper_http_requests_total",
    "HTTP requests answered by the API",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "chesscom_helper_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
)


_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _series(method: str, template: str, status: int) -> tuple[Any, Any]:
    """The labelled children, looked up once per (method, route, status), not per request."""
    key = (method, template, status)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = (
            HTTP_REQUESTS.labels(method, template, str(status)),
            HTTP_LATENCY.labels(method, template),
        )
    return found


class MetricsMiddleware:
    """Counts requests by route template (not raw path: usernames would explode cardinality)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope.get("method", "")
            counter, latency = _series(method, route_template(scope), status_code)
            counter.inc()
            latency.observe(time.perf_counter() - start)
            client = scope.get("client")
            log_access(
                client[0] if client else "-",
                request_line(method, scope["path"], scope["query_string"], scope["http_version"]),
                status_code,
                start,
            )


def route_template(scope: Scope) -> str:
    """`/api/v1/players/{username}` for `/api/v1/players/hikaru`.

    FastAPI hands us the route as its router declared it (without the include prefix),
    so the prefix is recovered from the request path, segment by segment.
    """
    route = scope.get("route")
    # path_format: `{email}` for `{email:email}`.
    route_path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(route_path, str) or not route_path:
        return "unmatched"
    depth = len([seg for seg in route_path.split("/") if seg])
    path: str = scope.get("path", "")
    segments = path.split("/")
    prefix = "/".join(segments[: len(segments) - depth]) if depth else path
    return prefix.rstrip("/") + route_path
