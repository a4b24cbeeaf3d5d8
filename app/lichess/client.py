"""The HTTP client to the Lichess API (SPEC §10, Appendix B), shared by API and worker.

One long-lived `httpx.AsyncClient`; every failure becomes a `LichessError` subclass. It
never retries and never paces itself: every call must run inside a turn of
:class:`app.lichess.gate.LichessGate`, which keeps all processes to one request at a
time within `LICHESS_REQUESTS_PER_SECOND` and pauses everyone after a 429.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from app.closing import AsyncClosing
from app.lichess.errors import (
    LichessError,
    LichessRateLimited,
    LichessTimedOut,
    LichessUnavailable,
    LichessUserNotFound,
)
from app.lichess.payloads import MAX_IDS_PER_REQUEST, LichessUser, Statuses, UserStatus

DEFAULT_API_BASE = "https://lichess.org"
M = TypeVar("M", bound=BaseModel)


class LichessClient(AsyncClosing):
    """Async client of `https://lichess.org` (or a simulator at another base)."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_BASE,
        *,
        user_agent: str,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout), transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_statuses(self, ids: Sequence[str]) -> list[UserStatus]:
        """`/api/users/status?ids=…&withGameMetas=true` for at most 100 ids."""
        if not 1 <= len(ids) <= MAX_IDS_PER_REQUEST:
            raise ValueError(f"1 to {MAX_IDS_PER_REQUEST} ids a request, got {len(ids)}")
        params = {"ids": ",".join(ids), "withGameMetas": "true"}
        response = await self._get("/api/users/status", params)
        if response.status_code != 200:
            raise _error(response, "/api/users/status")
        try:
            return Statuses.model_validate_json(b'{"items":' + response.content + b"}").items
        except ValidationError as exc:
            raise LichessUnavailable(
                f"/api/users/status: unexpected payload ({exc.error_count()} errors)",
                status_code=200,
            ) from exc

    async def get_user(self, username: str) -> LichessUser:
        """`/api/user/{username}`; LichessUserNotFound on 404."""
        path = f"/api/user/{quote(username.strip().lower(), safe='')}"
        response = await self._get(path, None)
        if response.status_code == 404:
            raise LichessUserNotFound(username)
        if response.status_code != 200:
            raise _error(response, path)
        try:
            return LichessUser.model_validate_json(response.content)
        except ValidationError as exc:
            raise LichessUnavailable(
                f"{path}: unexpected payload ({exc.error_count()} errors)", status_code=200
            ) from exc

    async def _get(self, path: str, params: dict[str, str] | None) -> httpx.Response:
        try:
            # A total deadline: httpx's own timeouts are per read/connect.
            async with asyncio.timeout(self.timeout):
                return await self._http.get(self.base_url + path, params=params)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LichessTimedOut(f"GET {path} timed out after {self.timeout}s") from exc
        except httpx.RequestError as exc:
            raise LichessUnavailable(f"GET {path} failed: {type(exc).__name__}: {exc}") from exc


def _error(response: httpx.Response, path: str) -> LichessError:
    status = response.status_code
    if status == 429:
        return LichessRateLimited(f"GET {path}: 429 Too Many Requests", status_code=429)
    if status >= 500:
        return LichessUnavailable(f"GET {path}: HTTP {status}", status_code=status)
    return LichessError(f"GET {path}: unexpected HTTP {status}", status_code=status)
