"""A Lichess API simulator for tests and benchmarks (SPEC Appendix B).

`LichessSimulator` is an ASGI app with an in-memory world that tests change directly
(users, games, streams, faults) while clients poll it, in-process through
`httpx.ASGITransport` or over a real socket (`tests.fakes.server.run_asgi_in_thread`:
every access to the world then holds `self._lock`, never across an await).

It behaves like Lichess where our code cares:

* `GET /api/users/status?ids=a,b&withGameMetas=true`: a JSON array, false flags left
  out, unknown ids left out, `playing` the game's `{"id", "clock", "variant"}` with
  `withGameMetas` (`true` without it); more than 100 ids → 400.
* `GET /api/user/{name}`: the account, `playing` the game's URL, 404 when unknown.
* One request at a time: a request arriving while another is in flight gets 429, and
  a client that asks again within `penalty_seconds` of a 429 gets 429 again (Lichess
  asks for a full minute). Both are counted (`overlaps`, `penalised`).
* Faults: `fail(status, times)`, `garbage(times)` (a 200 that is not the JSON), and
  `latency_seconds` on every answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

WEB = "https://lichess.org"
MAX_IDS = 100


@dataclass
class LichessRequest:
    """One request received; `status` None while (or if never) answered."""

    path: str
    ids: int  # how many ids it asked about (status requests)
    started: float  # clock at arrival
    ended: float | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Game:
    id: str
    clock: str | None
    variant: str
    started_at: float


@dataclass
class _User:
    username: str  # display case
    title: str | None = None
    online: bool = True
    game: _Game | None = None
    streaming: bool = False
    disabled: bool = False
    tos_violation: bool = False
    created_at: int = 1_400_000_000_000


@dataclass
class _Fault:
    remaining: int
    status: int | None = None
    garbage: bool = False


class LichessSimulator:
    """ASGI app + in-memory Lichess; see the module doc.

    Knobs: `latency_seconds`, `penalty_seconds`, `clock`. Observations: `requests`,
    `in_flight`, `peak_in_flight`, `overlaps` (requests that arrived while another was
    in flight), `penalised` (requests inside a 429's penalty), `games` (every game
    started: id → (username, started_at))."""

    def __init__(
        self,
        *,
        latency_seconds: float = 0.0,
        penalty_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.latency_seconds = latency_seconds
        self.penalty_seconds = penalty_seconds
        self.clock = clock
        self.requests: list[LichessRequest] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.overlaps = 0
        self.penalised = 0
        self.games: dict[str, tuple[str, float]] = {}
        self._penalty_until = 0.0
        self._lock = threading.Lock()
        self._users: dict[str, _User] = {}
        self._faults: list[_Fault] = []
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/api/users/status", self._status),
                Route("/api/user/{username}", self._user),
            ]
        )

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # -- the world --------------------------------------------------------------------

    def add_user(self, username: str, **fields: Any) -> None:
        with self._lock:
            self._users[username.lower()] = _User(username=username, **fields)

    def start_game(
        self, username: str, clock: str | None = "3+2", *, variant: str = "standard"
    ) -> str:
        """The user starts a game now (ending any other); returns its 8-character id."""
        with self._lock:
            game_id = f"G{next(self._ids):07d}"  # 8 letters and digits, like Lichess's
            now = self.clock()
            self._users[username.lower()].game = _Game(game_id, clock, variant, now)
            self.games[game_id] = (username.lower(), now)
            return game_id

    def end_game(self, username: str) -> None:
        with self._lock:
            self._users[username.lower()].game = None

    def start_stream(self, username: str) -> None:
        with self._lock:
            self._users[username.lower()].streaming = True

    def end_stream(self, username: str) -> None:
        with self._lock:
            self._users[username.lower()].streaming = False

    def close_user(self, username: str, *, tos_violation: bool = False) -> None:
        with self._lock:
            user = self._users[username.lower()]
            user.disabled = not tos_violation
            user.tos_violation = tos_violation

    def playing(self, username: str) -> str | None:
        with self._lock:
            game = self._users[username.lower()].game
            return None if game is None else game.id

    # -- faults -----------------------------------------------------------------------

    def fail(self, status: int = 500, times: int = 1) -> None:
        """The next `times` requests answer `status` (429 starts a penalty as usual)."""
        with self._lock:
            self._faults.append(_Fault(times, status=status))

    def garbage(self, times: int = 1) -> None:
        """The next `times` requests get a 200 whose body is not the JSON expected."""
        with self._lock:
            self._faults.append(_Fault(times, garbage=True))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    # -- inspection -------------------------------------------------------------------

    def status_requests(self) -> list[LichessRequest]:
        return [r for r in list(self.requests) if r.path == "/api/users/status"]

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.peak_in_flight = self.in_flight
            self.overlaps = self.penalised = 0

    # -- HTTP -------------------------------------------------------------------------

    async def _status(self, request: Request) -> Response:
        raw = request.query_params.get("ids", "")
        ids = [i.strip().lower() for i in raw.split(",") if i.strip()]
        metas = request.query_params.get("withGameMetas") == "true"

        def answer() -> Response:
            if len(ids) > MAX_IDS:
                return _json(400, {"error": f"Too many ids: {len(ids)}, expected up to 100"})
            with self._lock:
                body = [self._status_of(self._users[i], metas) for i in ids if i in self._users]
            return _json(200, body)

        return await self._handle(request, len(ids), answer)

    async def _user(self, request: Request) -> Response:
        name = request.path_params["username"].lower()

        def answer() -> Response:
            with self._lock:
                user = self._users.get(name)
                if user is None:
                    return _json(404, {"error": "Not found"})
                return _json(200, self._account_of(user))

        return await self._handle(request, 0, answer)

    async def _handle(self, request: Request, ids: int, answer: Callable[[], Response]) -> Response:
        now = self.clock()
        record = LichessRequest(
            request.url.path, ids, now, headers={k.lower(): v for k, v in request.headers.items()}
        )
        with self._lock:
            self.requests.append(record)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            overlapping = self.in_flight > 1
            penalised = now < self._penalty_until
            self.overlaps += overlapping
            self.penalised += penalised
            if overlapping:
                self._penalty_until = now + self.penalty_seconds
        try:
            response = await self._respond(answer, overlapping or penalised)
            record.status = response.status_code
            return response
        finally:
            with self._lock:
                self.in_flight -= 1
                record.ended = self.clock()

    async def _respond(self, answer: Callable[[], Response], refused: bool) -> Response:
        if refused:
            return _json(429, {"error": "Too many requests. Please wait a minute."})
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        fault = self._take_fault()
        if fault is not None:
            if fault.garbage:
                return Response(
                    b'[{"id": "x", "playing": {"id": 4', 200, media_type="application/json"
                )
            if fault.status == 429:
                with self._lock:
                    self._penalty_until = self.clock() + self.penalty_seconds
            if fault.status is not None:
                return _json(fault.status, {"error": f"Simulated HTTP {fault.status}"})
        return answer()

    @staticmethod
    def _status_of(user: _User, metas: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": user.username.lower(), "name": user.username}
        if user.title:
            entry["title"] = user.title
        if user.online:
            entry["online"] = True
        if user.game is not None:
            entry["playing"] = (
                {"id": user.game.id, "clock": user.game.clock, "variant": user.game.variant}
                if metas
                else True
            )
            if metas and user.game.clock is None:
                del entry["playing"]["clock"]
        if user.streaming:
            entry["streaming"] = True
        return entry

    def _account_of(self, user: _User) -> dict[str, Any]:
        name = user.username.lower()
        account: dict[str, Any] = {
            "id": name,
            "username": user.username,
            "createdAt": user.created_at,
            "seenAt": int(self.clock() * 1000),
            "url": f"{WEB}/@/{user.username}",
            "perfs": {"blitz": {"games": 100, "rating": 2500, "rd": 45, "prog": 3}},
            "profile": {"realName": f"{user.username.capitalize()} Player", "flag": "NO"},
        }
        if user.title:
            account["title"] = user.title
        if user.disabled:
            account = {"id": name, "username": user.username, "disabled": True}
        if user.tos_violation:
            account["tosViolation"] = True
        if user.game is not None:
            account["playing"] = f"{WEB}/{user.game.id}/white"
        if user.streaming:
            account["streaming"] = True
        return account


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, media_type="application/json")
