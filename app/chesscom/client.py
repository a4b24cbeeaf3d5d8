"""The one HTTP client to the Chess.com Published-Data API, shared by API and worker.

It wraps a single long-lived `httpx.AsyncClient` (built at start-up, closed at
shutdown), speaks conditional requests (ETag → 304 without parsing), and turns every
failure into a `ChessComError` subclass. It never retries: callers own that policy
(see `app.chesscom.retry`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from app.chesscom.errors import (
    ChessComError,
    ChessComUnavailable,
    Forbidden,
    PlayerNotFound,
    RateLimited,
)
from app.chesscom.payloads import Archive, ArchiveIndex, Profile
from app.chesscom.streamers import Streamers
from app.closing import AsyncClosing
from app.retry_after import parse_retry_after

DEFAULT_API_BASE = "https://api.chess.com/pub"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Called after every request with (endpoint kind, HTTP status or None, seconds).
ResponseHook = Callable[[str, int | None, float], None]


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    """A 200 answer: the parsed payload and the validators to send next time."""

    data: T
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class NotModified:
    """A 304 answer: nothing changed since `etag`; no body was read or parsed."""

    etag: str | None = None


NOT_MODIFIED = NotModified()


def path_username(username: str) -> str:
    """The username as Chess.com URLs spell it: stripped, lower-case, escaped."""
    name = username.strip().lower()
    if not name:
        raise ValueError("empty Chess.com username")
    return quote(name, safe="")


class ChessComClient(AsyncClosing):
    """Async client of `https://api.chess.com/pub` (or a simulator at another base)."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_BASE,
        *,
        user_agent: str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        on_response: ResponseHook | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._on_response = on_response
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            headers=self._headers,
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the underlying connection pool (only if this client created it)."""
        if self._owns_http:
            await self._http.aclose()

    # One thin typed method per endpoint, all alike on purpose: the work is in `_get`.
    async def get_profile(
        self, username: str, etag: str | None = None
    ) -> Fetched[Profile] | NotModified:
        """`/player/{username}`. Raises PlayerNotFound (404/410) and the other errors."""
        path = f"/player/{path_username(username)}"
        return await self._get("profile", path, Profile, username, etag)

    async def get_archive(
        self, username: str, year: int, month: int, etag: str | None = None
    ) -> Fetched[Archive] | NotModified:
        """`/player/{username}/games/{YYYY}/{MM}`: the games that ended that month."""
        if not 1 <= month <= 12:
            raise ValueError(f"month must be 1..12, got {month}")
        path = f"/player/{path_username(username)}/games/{year:04d}/{month:02d}"
        return await self._get("archive", path, Archive, username, etag)

    async def get_archive_index(
        self, username: str, etag: str | None = None
    ) -> Fetched[ArchiveIndex] | NotModified:
        """`/player/{username}/games/archives`: the URLs of the months with games."""
        path = f"/player/{path_username(username)}/games/archives"
        return await self._get("archives", path, ArchiveIndex, username, etag)

    async def get_streamers(self, etag: str | None = None) -> Fetched[Streamers] | NotModified:
        """`/streamers`: Chess.com's streamers and who of them is live (one request)."""
        return await self._get("streamers", "/streamers", Streamers, "", etag)

    async def _get(
        self, kind: str, path: str, model: type[M], username: str, etag: str | None
    ) -> Fetched[M] | NotModified:
        headers = dict(self._headers)
        if etag:
            headers["If-None-Match"] = etag
        started = time.perf_counter()
        try:
            # A total deadline: httpx's own timeouts are per read/connect, not per request.
            async with asyncio.timeout(self.timeout):
                response = await self._http.get(
                    self.base_url + path, headers=headers, follow_redirects=True
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            self._report(kind, None, started)
            raise ChessComUnavailable(f"GET {path} timed out after {self.timeout}s") from exc
        except httpx.RequestError as exc:
            self._report(kind, None, started)
            raise ChessComUnavailable(f"GET {path} failed: {type(exc).__name__}: {exc}") from exc
        self._report(kind, response.status_code, started)
        return _interpret(response, kind, path, model, username, etag)

    def _report(self, kind: str, status: int | None, started: float) -> None:
        if self._on_response is not None:
            self._on_response(kind, status, time.perf_counter() - started)


def _interpret(
    response: httpx.Response,
    kind: str,
    path: str,
    model: type[M],
    username: str,
    etag: str | None,
) -> Fetched[M] | NotModified:
    """Map one HTTP answer to a result or a ChessComError subclass."""
    status = response.status_code
    if status == 304:
        return NotModified(etag=response.headers.get("ETag") or etag)
    if status == 200:
        try:
            data = model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ChessComUnavailable(
                f"GET {path}: unexpected payload ({exc.error_count()} errors)", status_code=200
            ) from exc
        return Fetched(data, response.headers.get("ETag"), response.headers.get("Last-Modified"))
    if status in (404, 410):
        if status == 404 and kind == "archive" and not _says_user_not_found(response):
            # A month Chess.com refuses (e.g. "in the future" in its clock) has no games yet.
            return Fetched(model.model_validate({"games": []}))
        raise PlayerNotFound(username, gone=status == 410)
    if status == 403:
        raise Forbidden(
            f"GET {path}: 403 Forbidden (does the User-Agent carry contact info?)",
            status_code=403,
        )
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimited(f"GET {path}: 429 Too Many Requests", retry_after=retry_after)
    if status >= 500:
        raise ChessComUnavailable(f"GET {path}: HTTP {status}", status_code=status)
    raise ChessComError(f"GET {path}: unexpected HTTP {status}", status_code=status)


def _says_user_not_found(response: httpx.Response) -> bool:
    """True unless a 404 body clearly talks about something other than the user."""
    try:
        message = json.loads(response.content).get("message", "")
    except (ValueError, AttributeError):
        return True
    if not isinstance(message, str) or not message:
        return True
    lowered = message.lower()
    return "not found" in lowered or "user" in lowered
