"""A Chess.com Published-Data API simulator for tests (SPEC appendix).

`ChessComSimulator` is an ASGI app with an in-memory world that tests change directly
(players, games, faults) while clients poll it: through `httpx.ASGITransport`
in-process, or over a real socket with `tests.fakes.server.run_asgi_in_thread`
(then the world is changed from the test thread while the server thread serves, so
every access to it holds `self._lock`; the lock is never held across an await).

It behaves like the real service where our code cares: routes under `/pub`, strong
ETags from a content hash with `Last-Modified`, 304 on `If-None-Match`, 404/410
JSON, 301 after a rename, 403 without contact info in the User-Agent, 429 with
`Retry-After` above a concurrency cap, latency, and per-player fault injection.
`/pub/streamers` lists the streamers (`set_streamer`, `start_stream`, `end_stream`)
with the same ETags, 304s and faults (`endpoint="streamers"`).
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import hashlib
import itertools
import json
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

BASE_PATH = "/pub"
PUBLIC_API = "https://api.chess.com/pub"
WEB = "https://www.chess.com"
STANDARD_FEN = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
FINAL_FEN = "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"

DEFAULT_TIME_CONTROL = {"bullet": "60", "blitz": "180+2", "rapid": "600", "daily": "1/86400"}
TYPICAL_DURATION = {"bullet": 110, "blitz": 430, "rapid": 1300, "daily": 3 * 86400}
DRAWS = {"agreed", "repetition", "stalemate", "insufficient", "50move", "timevsinsufficient"}
OPPONENTS = ("fabianocaruana", "anishgiri", "lachesisq", "firouzja2003", "gukeshdommaraju")

Endpoint = str  # "profile" | "archive" | "archives" | "streamers"
CLIENT_CLOSED = 499  # recorded when the client hung up before the answer (nginx's code)


@dataclass
class RecordedRequest:
    """One request the simulator received; `status` is None while (or if never) answered."""

    method: str
    path: str
    headers: dict[str, str]
    status: int | None = None
    at: float = field(default_factory=time.time)  # arrival (wall clock)

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("user-agent")

    @property
    def if_none_match(self) -> str | None:
        return self.headers.get("if-none-match")


@dataclass
class _Fault:
    remaining: int | None  # None: until cleared
    endpoint: Endpoint | None = None
    status: int | None = None
    delay: float = 0.0
    malformed: bool = False
    retry_after: int | None = None


@dataclass
class _Player:
    profile: dict[str, Any]
    months: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)
    gone: bool = False


def has_contact_info(user_agent: str) -> bool:
    """Chess.com's 2023 rule, as we model it: an e-mail address or a `contact` mention."""
    return "@" in user_agent or "contact" in user_agent.lower()


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"code": 0, "message": message}).encode()
    return Response(body, status, headers=headers, media_type="application/json")


def _etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = [part.strip().removeprefix("W/") for part in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def _result_code(result: str) -> str:
    return "1/2" if result in DRAWS else ("1" if result == "win" else "0")


class ChessComSimulator:
    """ASGI app + in-memory Chess.com. Tests mutate it directly; see the module doc.

    Knobs (plain attributes, may change between requests): `max_concurrent` (above it,
    requests get 429 + `Retry-After: retry_after_seconds`), `latency_seconds` (every
    answer), `hold` (a threading.Event: while it is not set, the players' requests under
    the cap wait, so a test decides when they end instead of racing a latency),
    `require_contact` (403 without contact info in the User-Agent), `clock`.
    Observations: `requests` (every RecordedRequest, in arrival order), `in_flight`, and
    `peak_concurrency` (most requests in flight at once, 429-ed ones included).
    """

    def __init__(
        self,
        *,
        max_concurrent: int | None = None,
        latency_seconds: float = 0.0,
        retry_after_seconds: int | None = 1,
        require_contact: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.latency_seconds = latency_seconds
        self.retry_after_seconds = retry_after_seconds
        self.require_contact = require_contact
        self.clock = clock
        self.hold: threading.Event | None = None
        self.requests: list[RecordedRequest] = []
        self.peak_concurrency = 0
        self.in_flight = 0
        self._lock = threading.Lock()
        self._players: dict[str, _Player] = {}
        self._redirects: dict[str, str] = {}
        self._faults: dict[str | None, list[_Fault]] = {}
        self._validators: dict[str, tuple[str, float]] = {}
        self._streamers: dict[str, dict[str, Any]] = {}
        # When each stream began (clock), by lower-case username: benchmarks measure from it.
        self.stream_starts: dict[str, list[float]] = {}
        self._player_ids = itertools.count(15_448_422)
        self._live_ids = itertools.count(98_765_432_101)
        self._daily_ids = itertools.count(612_345_001)
        player = BASE_PATH + "/player/{username}"
        self.app = Starlette(
            routes=[
                Route(BASE_PATH + "/streamers", self._streamers_list),
                Route(player, self._profile),
                Route(player + "/games/archives", self._archives),
                Route(player + "/games/{year}/{month}", self._archive),
                Route("/{rest:path}", self._unknown),
            ]
        )

    def transport(self) -> httpx.ASGITransport:
        """An httpx transport into this simulator, in-process (no socket)."""
        return httpx.ASGITransport(app=self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # -- the world --------------------------------------------------------------------

    def add_player(self, username: str, **overrides: Any) -> dict[str, Any]:
        """Create a player (display case kept in `url`); returns a copy of the profile."""
        name = username.lower()
        now = int(self.clock())
        with self._lock:
            pid = next(self._player_ids)
            digest = hashlib.sha1(name.encode()).hexdigest()
            profile: dict[str, Any] = {
                "avatar": f"https://images.chesscomfiles.com/uploads/v1/user/{pid}."
                f"{digest[:8]}.200x200o.{digest[8:20]}.png",
                "player_id": pid,
                "@id": f"{PUBLIC_API}/player/{name}",
                "url": f"{WEB}/member/{username}",
                "name": f"{username.capitalize()} Player",
                "username": name,
                "followers": int(digest[:4], 16) % 5000,
                "country": f"{PUBLIC_API}/country/US",
                "location": "Fort Lauderdale, Florida",
                "last_online": now - 3600,
                "joined": now - 3 * 365 * 86400,
                "status": "premium",
                "is_streamer": False,
                "verified": False,
                "league": "Champion",
                "streaming_platforms": [],
            }
            profile.update(overrides)
            self._players[name] = _Player(profile=profile)
            self._redirects.pop(name, None)
            return copy.deepcopy(profile)

    def update_player(self, username: str, **fields: Any) -> dict[str, Any]:
        """Change profile fields (the profile's ETag changes with them)."""
        with self._lock:
            profile = self._players[username.lower()].profile
            profile.update(fields)
            return copy.deepcopy(profile)

    def add_game(
        self,
        username: str,
        *,
        end_time: int,
        time_class: str = "blitz",
        time_control: str | None = None,
        opponent: str | None = None,
        uuid: str | None = None,
        rated: bool = True,
        color: str = "white",
        result: str = "win",
        start_time: int | None = None,
        rating: int = 2850,
        opponent_rating: int = 2790,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Add a finished game to the archive of the month of `end_time` (kept ordered).

        `result` is `username`'s result (`win`, `resigned`, `agreed`, ...). The game is
        also filed under the opponent when the opponent is a simulated player, as on
        Chess.com. `overrides` replace top-level fields (e.g. `pgn=""`).
        """
        with self._lock:
            player = self._players[username.lower()]
            daily = time_class == "daily"
            number = next(self._daily_ids if daily else self._live_ids)
            opponent = opponent or OPPONENTS[number % len(OPPONENTS)]
            if start_time is None:
                start_time = end_time - TYPICAL_DURATION.get(time_class, 600)
            me = {"name": _display_name(player.profile), "rating": rating, "result": result}
            them = {"name": opponent, "rating": opponent_rating, "result": _other(result)}
            white, black = (me, them) if color == "white" else (them, me)
            url = f"{WEB}/game/{'daily' if daily else 'live'}/{number}"
            game = _game_payload(
                url=url,
                uuid=uuid or str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, url)),
                time_class=time_class,
                time_control=time_control or DEFAULT_TIME_CONTROL.get(time_class, "600"),
                start_time=start_time,
                end_time=end_time,
                rated=rated,
                white=white,
                black=black,
            )
            game.update(overrides)
            for owner in {username.lower(), opponent.lower()}:
                if owner in self._players:
                    self._file_game(self._players[owner], game)
            return copy.deepcopy(game)

    def games(self, username: str) -> list[dict[str, Any]]:
        """Every game of a player, oldest first (copies)."""
        with self._lock:
            months = self._players[username.lower()].months
            return [copy.deepcopy(g) for key in sorted(months) for g in months[key]]

    def close_player(self, username: str, *, gone: bool = False, status: str = "closed") -> None:
        """Close an account: profile status `closed` (200), or with `gone=True` 410 everywhere."""
        with self._lock:
            player = self._players[username.lower()]
            player.profile["status"] = status
            player.gone = gone

    def remove_player(self, username: str) -> None:
        """Forget a player: every endpoint answers 404 from now on."""
        with self._lock:
            self._players.pop(username.lower(), None)

    def rename_player(self, old: str, new: str) -> None:
        """Rename (player_id stays); the old name answers 301 to the new one."""
        with self._lock:
            player = self._players.pop(old.lower())
            name = new.lower()
            player.profile.update(
                username=name, url=f"{WEB}/member/{new}", **{"@id": f"{PUBLIC_API}/player/{name}"}
            )
            self._players[name] = player
            self._redirects[old.lower()] = name

    # -- streamers -------------------------------------------------------------------

    def set_streamer(
        self,
        username: str,
        *,
        live: bool = False,
        platforms: list[dict[str, Any]] | None = None,
        twitch_url: str | None = None,
    ) -> None:
        """List `username` as a streamer. Without `platforms` the entry has Twitch only
        and no `platforms` key (an older entry); `live` sets `is_live`."""
        name = username.lower()
        entry: dict[str, Any] = {
            "username": username,
            "avatar": f"https://images.chesscomfiles.com/uploads/v1/user/{name}.png",
            "twitch_url": twitch_url or f"https://twitch.tv/{name}",
            "url": f"{WEB}/member/{name}",
            "is_live": live,
            "is_community_streamer": False,
        }
        if platforms is not None:
            entry["platforms"] = copy.deepcopy(platforms)
        with self._lock:
            self._streamers[name] = entry

    def start_stream(self, username: str, platform: str = "twitch") -> None:
        """Go live on `platform` (the main live one); listed with platforms if not yet."""
        name = username.lower()
        with self._lock:
            entry = self._streamers.get(name)
        if entry is None or "platforms" not in entry:
            self.set_streamer(username, platforms=[])
        with self._lock:
            entry = self._streamers[name]
            entry["is_live"] = True
            for p in entry["platforms"]:
                p["is_main_live_platform"] = False
            live = next((p for p in entry["platforms"] if p["type"] == platform), None)
            if live is None:
                live = {
                    "type": platform,
                    "stream_url": f"https://{platform}.example/{name}",
                    "channel_url": f"https://{platform}.example/{name}",
                }
                entry["platforms"].append(live)
            live.update(is_live=True, is_main_live_platform=True)
            self.stream_starts.setdefault(name, []).append(self.clock())

    def end_stream(self, username: str) -> None:
        with self._lock:
            entry = self._streamers[username.lower()]
            entry["is_live"] = False
            for p in entry.get("platforms", []):
                p.update(is_live=False, is_main_live_platform=False)

    def remove_streamer(self, username: str) -> None:
        with self._lock:
            self._streamers.pop(username.lower(), None)

    # -- faults -----------------------------------------------------------------------

    def fail(
        self,
        username: str | None,
        status: int = 500,
        times: int | None = 1,
        *,
        endpoint: Endpoint | None = None,
        retry_after: int | None = None,
    ) -> None:
        """The next `times` requests about `username` (None: anyone) answer `status`."""
        self._add_fault(username, _Fault(times, endpoint, status=status, retry_after=retry_after))

    def timeout(
        self,
        username: str | None,
        seconds: float,
        times: int | None = None,
        *,
        endpoint: Endpoint | None = None,
    ) -> None:
        """Requests about `username` answer only after `seconds` (default: until cleared)."""
        self._add_fault(username, _Fault(times, endpoint, delay=seconds))

    def malformed(
        self, username: str | None, times: int | None = 1, *, endpoint: Endpoint | None = None
    ) -> None:
        """The next `times` requests about `username` get a 200 with truncated JSON."""
        self._add_fault(username, _Fault(times, endpoint, malformed=True))

    def clear_faults(self, username: str | None = None) -> None:
        with self._lock:
            if username is None:
                self._faults.clear()
            else:
                self._faults.pop(username.lower(), None)

    def _add_fault(self, username: str | None, fault: _Fault) -> None:
        with self._lock:
            key = username.lower() if username else None
            self._faults.setdefault(key, []).append(fault)

    def _take_fault(self, username: str, endpoint: Endpoint) -> _Fault | None:
        with self._lock:
            for key in (username, None):
                for fault in self._faults.get(key, []):
                    if fault.endpoint not in (None, endpoint) or fault.remaining == 0:
                        continue
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _take_streamers_fault(self) -> _Fault | None:
        """Only faults aimed at the list (`endpoint="streamers"`): a fault for "anyone"
        means the players' endpoints, as before the list existed."""
        with self._lock:
            for fault in self._faults.get(None, []):
                if fault.endpoint == "streamers" and fault.remaining != 0:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    # -- inspection -------------------------------------------------------------------

    def requests_for(self, username: str) -> list[RecordedRequest]:
        """The recorded requests about one player (any endpoint)."""
        marker = f"{BASE_PATH}/player/{username.lower()}"
        return [
            r for r in list(self.requests) if r.path == marker or r.path.startswith(marker + "/")
        ]

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.peak_concurrency = self.in_flight

    # -- HTTP -------------------------------------------------------------------------

    async def _profile(self, request: Request) -> Response:
        return await self._handle(request, "profile", lambda p: copy.deepcopy(p.profile))

    async def _archives(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/") + BASE_PATH
        name = request.path_params["username"].lower()

        def build(player: _Player) -> dict[str, Any]:
            months = sorted(key for key, games in player.months.items() if games)
            return {"archives": [f"{base}/player/{name}/games/{y:04d}/{m:02d}" for y, m in months]}

        return await self._handle(request, "archives", build)

    async def _archive(self, request: Request) -> Response:
        year, month = request.path_params["year"], request.path_params["month"]
        if not (len(year) == 4 and len(month) == 2 and (year + month).isdigit()):
            return _json_error(404, "Invalid date format.")
        key = (int(year), int(month))
        return await self._handle(
            request, "archive", lambda p: {"games": copy.deepcopy(p.months.get(key, []))}
        )

    async def _streamers_list(self, request: Request) -> Response:
        record = RecordedRequest(
            request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()}
        )
        with self._lock:
            self.requests.append(record)
            self.in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
            over_cap = self.max_concurrent is not None and self.in_flight > self.max_concurrent
        try:
            response = await self._respond_streamers(request, over_cap)
            record.status = response.status_code
            return response
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _respond_streamers(self, request: Request, over_cap: bool) -> Response:
        if self.require_contact and not has_contact_info(request.headers.get("user-agent", "")):
            return _json_error(403, "Forbidden: identify your client with contact info.")
        if over_cap:
            return _json_error(429, "Too many parallel requests.", {"Retry-After": "1"})
        if self.latency_seconds and not await _pause(request, self.latency_seconds):
            return Response(status_code=CLIENT_CLOSED)
        fault = self._take_streamers_fault()
        if fault is not None:
            if fault.delay and not await _pause(request, fault.delay):
                return Response(status_code=CLIENT_CLOSED)
            if fault.malformed:
                garbled = b'{"streamers": [{"username": 7'
                return Response(garbled, 200, media_type="application/json")
            if fault.status is not None:
                return _json_error(fault.status, f"Simulated HTTP {fault.status}.")
        with self._lock:
            listed = [copy.deepcopy(e) for _, e in sorted(self._streamers.items())]
            body = json.dumps({"streamers": listed}, separators=(",", ":")).encode()
            etag, modified = self._validate(request.url.path, body)
        headers = {"ETag": etag, "Last-Modified": formatdate(modified, usegmt=True)}
        inm = request.headers.get("if-none-match")
        if inm is not None and _etag_matches(inm, etag):
            return Response(status_code=304, headers=headers)
        return Response(body, 200, headers=headers, media_type="application/json")

    async def _unknown(self, request: Request) -> Response:
        return _json_error(404, 'Data provider not found for key "' + request.url.path + '".')

    async def _handle(
        self, request: Request, endpoint: Endpoint, build: Callable[[_Player], dict[str, Any]]
    ) -> Response:
        record = RecordedRequest(
            request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()}
        )
        with self._lock:
            self.requests.append(record)
            self.in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
            over_cap = self.max_concurrent is not None and self.in_flight > self.max_concurrent
        try:
            response = await self._respond(request, endpoint, build, over_cap)
            record.status = response.status_code
            return response
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _respond(
        self,
        request: Request,
        endpoint: Endpoint,
        build: Callable[[_Player], dict[str, Any]],
        over_cap: bool,
    ) -> Response:
        if self.require_contact and not has_contact_info(request.headers.get("user-agent", "")):
            return _json_error(403, "Forbidden: identify your client with contact info.")
        if over_cap:
            retry = self.retry_after_seconds
            headers = {"Retry-After": str(retry)} if retry is not None else None
            return _json_error(429, "Too many parallel requests.", headers)
        if self.latency_seconds and not await _pause(request, self.latency_seconds):
            return Response(status_code=CLIENT_CLOSED)
        if self.hold is not None and not await _held(request, self.hold):
            return Response(status_code=CLIENT_CLOSED)
        name = request.path_params["username"].lower()
        fault = self._take_fault(name, endpoint)
        if fault is not None:
            if fault.delay and not await _pause(request, fault.delay):
                return Response(status_code=CLIENT_CLOSED)
            if fault.malformed:
                return Response(
                    b'{"games": [{"url": "https://www.chess.com/ga',
                    200,
                    media_type="application/json",
                )
            if fault.status is not None:
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
                return _json_error(fault.status, f"Simulated HTTP {fault.status}.", extra)
        return self._answer(request, name, build)

    def _answer(
        self, request: Request, name: str, build: Callable[[_Player], dict[str, Any]]
    ) -> Response:
        with self._lock:
            if name in self._redirects:
                rest = request.url.path.lower().removeprefix(f"{BASE_PATH}/player/{name}")
                target = f"{BASE_PATH}/player/{self._redirects[name]}{rest}"
                return RedirectResponse(str(request.url.replace(path=target)), 301)
            player = self._players.get(name)
            if player is None:
                return _json_error(404, f'User "{name}" not found.')
            if player.gone:
                return _json_error(410, f'User "{name}" is gone.')
            body = json.dumps(build(player), separators=(",", ":")).encode()
            etag, modified = self._validate(request.url.path, body)
        headers = {"ETag": etag, "Last-Modified": formatdate(modified, usegmt=True)}
        inm = request.headers.get("if-none-match")
        ims = request.headers.get("if-modified-since")
        if inm is not None and _etag_matches(inm, etag):
            return Response(status_code=304, headers=headers)
        if inm is None and ims is not None and _not_modified_since(ims, modified):
            return Response(status_code=304, headers=headers)
        return Response(body, 200, headers=headers, media_type="application/json")

    def _validate(self, path: str, body: bytes) -> tuple[str, float]:
        """Strong ETag from the content hash; Last-Modified moves when the content does."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        previous = self._validators.get(path)
        if previous is not None and previous[0] == etag:
            return previous
        self._validators[path] = (etag, float(int(self.clock())))
        return self._validators[path]

    def _file_game(self, player: _Player, game: dict[str, Any]) -> None:
        ended = datetime.fromtimestamp(game["end_time"], UTC)
        games = player.months.setdefault((ended.year, ended.month), [])
        bisect.insort(games, game, key=lambda g: g["end_time"])
        player.profile["last_online"] = max(player.profile.get("last_online", 0), game["end_time"])


async def _pause(request: Request, seconds: float) -> bool:
    """Sleep like a slow server; False as soon as the client hung up (timed out).

    Stopping early keeps a threaded uvicorn from waiting on abandoned requests at shutdown.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(left, 0.05))
        if await request.is_disconnected():
            return False
    return True


async def _held(request: Request, hold: threading.Event) -> bool:
    """Wait until `hold` is set (by the test, from any thread); False as soon as the
    client hung up."""
    while not hold.is_set():
        await asyncio.sleep(0.01)
        if await request.is_disconnected():
            return False
    return True


def _not_modified_since(if_modified_since: str, modified: float) -> bool:
    try:
        return parsedate_to_datetime(if_modified_since).timestamp() >= modified
    except (TypeError, ValueError):
        return False


def _display_name(profile: dict[str, Any]) -> str:
    return str(profile["url"]).rstrip("/").rsplit("/", 1)[-1]


def _other(result: str) -> str:
    if result in DRAWS:
        return result
    return "resigned" if result == "win" else "win"


def _game_payload(
    *,
    url: str,
    uuid: str,
    time_class: str,
    time_control: str,
    start_time: int,
    end_time: int,
    rated: bool,
    white: dict[str, Any],
    black: dict[str, Any],
) -> dict[str, Any]:
    """A game as the monthly archive publishes it, PGN headers included."""
    start = datetime.fromtimestamp(start_time, UTC)
    end = datetime.fromtimestamp(end_time, UTC)
    score = {"1": "1-0", "0": "0-1", "1/2": "1/2-1/2"}[_result_code(white["result"])]
    winner = white if white["result"] == "win" else black if black["result"] == "win" else None
    termination = f"{winner['name']} won by resignation" if winner else "Game drawn by agreement"
    headers = {
        "Event": "Let's Play!" if time_class == "daily" else "Live Chess",
        "Site": "Chess.com",
        "Date": start.strftime("%Y.%m.%d"),
        "Round": "-",
        "White": white["name"],
        "Black": black["name"],
        "Result": score,
        "CurrentPosition": FINAL_FEN,
        "Timezone": "UTC",
        "ECO": "C44",
        "ECOUrl": f"{WEB}/openings/Kings-Pawn-Opening-Kings-Knight-Variation",
        "UTCDate": start.strftime("%Y.%m.%d"),
        "UTCTime": start.strftime("%H:%M:%S"),
        "WhiteElo": str(white["rating"]),
        "BlackElo": str(black["rating"]),
        "TimeControl": time_control,
        "Termination": termination,
        "StartTime": start.strftime("%H:%M:%S"),
        "EndDate": end.strftime("%Y.%m.%d"),
        "EndTime": end.strftime("%H:%M:%S"),
        "Link": url,
    }
    pgn = "\n".join(f'[{k} "{v}"]' for k, v in headers.items())
    pgn += f"\n\n1. e4 {{[%clk 0:02:59.9]}} 1... e5 2. Nf3 2... Nc6 {score}\n"
    game: dict[str, Any] = {
        "url": url,
        "pgn": pgn,
        "time_control": time_control,
        "end_time": end_time,
        "rated": rated,
        "tcn": "mC0KgvZJ",
        "uuid": uuid,
        "initial_setup": STANDARD_FEN,
        "fen": FINAL_FEN,
        "time_class": time_class,
        "rules": "chess",
        "white": _side(white),
        "black": _side(black),
        "eco": headers["ECOUrl"],
    }
    if time_class == "daily":
        game["start_time"] = start_time
    return game


def _side(side: dict[str, Any]) -> dict[str, Any]:
    name = str(side["name"])
    return {
        "rating": side["rating"],
        "result": side["result"],
        "@id": f"{PUBLIC_API}/player/{name.lower()}",
        "username": name,
        "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, name.lower() + ".chess.com")),
    }
