"""Hostile input and leaks (issue 4 §5, §6, §7; SPEC §4, §8).

Bad input gets a clear 4xx and changes nothing; CR/LF never reaches a mail header;
text from Chess.com is escaped wherever it is rendered; SQL-injection strings are
inert; pages carry security headers; no anonymous answer carries an address; no
error answer and no log line carries a secret.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin_tokens import hash_token
from app.models import ApiToken, EmailSubscription, NotificationLog, Player
from app.notifications.payloads import GameRecord
from app.players import service as players_service
from app.tokens import Purpose, TokenSigner
from tests.conftest import ADMIN_TOKEN
from tests.emails.conftest import confirmation, live
from tests.fakes.chesscom import ChessComSimulator

pytestmark = pytest.mark.usefixtures("clean_db")

Factory = async_sessionmaker[AsyncSession]
JSON = {"Accept": "application/json"}
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
BODY_ROUTES = {
    "/api/v1/players": {"username": "hikaru"},
    "/api/v1/subscriptions": {"email": "fan@example.com", "username": "hikaru"},
    "/api/v1/subscribers/erase-request": {"email": "fan@example.com"},
}
LINK_PATHS = {
    Purpose.confirm: "/api/v1/subscriptions/confirm",
    Purpose.unsubscribe: "/api/v1/unsubscribe",
    Purpose.erase: "/api/v1/subscribers/erase",
}
SQLI = [
    "' OR '1'='1",
    "'; DROP TABLE players; --",
    "1; DELETE FROM email_subscriptions",
    "hikaru' UNION SELECT email FROM email_subscriptions --",
    "%' OR 1=1 --",
    "\\'; TRUNCATE api_tokens; --",
]


def signer(app: FastAPI) -> TokenSigner:
    s: TokenSigner = app.state.signer
    return s


async def counts(factory: Factory) -> dict[str, int]:
    async with factory() as s:
        return {
            model.__tablename__: await s.scalar(select(func.count()).select_from(model)) or 0
            for model in (Player, EmailSubscription, NotificationLog, ApiToken)
        }


@pytest.fixture
async def populated(
    client: httpx.AsyncClient, hikaru: object, admin: dict[str, str], session_factory: Factory
) -> AsyncIterator[dict[str, int]]:
    """A tracked player, a subscription and its outbox row, and a CLI-style token."""
    r = await client.post(
        "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "hikaru"}
    )
    assert r.status_code == 202
    async with session_factory() as s, s.begin():
        s.add(ApiToken(name="ops", token_hash=hash_token("cch_populated-token")))
    yield await counts(session_factory)


# -- bodies ------------------------------------------------------------------------------


def _bad_bodies(route: str) -> list[Any]:
    valid = BODY_ROUTES[route]
    bodies: list[Any] = [
        {**valid, "is_admin": True},  # unknown field
        {**valid, "email_subscriptions": []},
        {},
        None,
        [],
        [valid],
        "hikaru",
        42,
    ]
    for field in valid:
        for wrong in (None, 42, 4.2, True, [valid[field]], {"$ne": ""}, "x" * 2000):
            bodies.append({**valid, field: wrong})
        bodies.append({k: v for k, v in valid.items() if k != field})
    return bodies


@pytest.mark.parametrize("route", list(BODY_ROUTES))
async def test_unknown_fields_and_wrong_types_are_422_and_change_nothing(
    client: httpx.AsyncClient, session_factory: Factory, populated: dict[str, int], route: str
) -> None:
    for body in _bad_bodies(route):
        r = await client.post(route, json=body)
        assert r.status_code == 422, body
        assert "detail" in r.json()
    # Not JSON at all, or not even text.
    for raw, ctype in [
        (b"{", "application/json"),
        (b"username=hikaru", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00{", "application/json"),
        (b"", "application/json"),
    ]:
        r = await client.post(route, content=raw, headers={"Content-Type": ctype})
        assert r.status_code == 422, raw
    assert await counts(session_factory) == populated


@pytest.mark.parametrize("route", [*BODY_ROUTES, "/api/v1/unsubscribe?token=x"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_one_megabyte_body_is_413(
    client: httpx.AsyncClient,
    session_factory: Factory,
    populated: dict[str, int],
    route: str,
    chunked: bool,
) -> None:
    payload = b'{"username": "' + b"a" * (1024 * 1024) + b'"}'

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 64 * 1024):
            yield payload[i : i + 64 * 1024]

    r = await client.post(
        route,
        content=stream() if chunked else payload,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body too large"}
    assert await counts(session_factory) == populated


# -- header injection --------------------------------------------------------------------

CRLF_EMAILS = [
    "fan@example.com\r\nBcc: victim@example.com",
    "fan@example.com\nBcc: victim@example.com",
    "fan@example.com\rBcc: victim@example.com",
    "fan@example.com\r\n\r\n<html>spoofed body",
    "Fan <fan@example.com>\r\nCc: victim@example.com",
    "fan\r\n@example.com",
    "fan@example.com\u2028Bcc: victim@example.com",
    "fan@example.com\x00Bcc: victim@example.com",
]


@pytest.mark.parametrize("email", CRLF_EMAILS)
async def test_cr_lf_in_an_email_address_is_422_and_never_stored(
    client: httpx.AsyncClient,
    hikaru: object,
    admin: dict[str, str],
    session_factory: Factory,
    email: str,
) -> None:
    r = await client.post("/api/v1/subscriptions", json={"email": email, "username": "hikaru"})
    assert r.status_code == 422
    r = await client.post("/api/v1/subscribers/erase-request", json={"email": email})
    assert r.status_code == 422
    r = await client.get("/api/v1/notifications", params={"email": email}, headers=admin)
    assert r.status_code == 422
    async with session_factory() as s:
        assert await s.scalar(select(func.count()).select_from(EmailSubscription)) == 0
        assert await s.scalar(select(func.count()).select_from(NotificationLog)) == 0
    # Even if one got past validation, the mail renderer refuses it as a recipient.
    with pytest.raises(ValueError, match="to"):
        confirmation("https://helper.example/confirm?token=t", to=email, row_id=1)


async def test_cr_lf_in_the_admin_erase_path_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], populated: dict[str, int]
) -> None:
    r = await client.delete("/api/v1/subscribers/fan@example.com%0d%0aBcc:x@y.z", headers=admin)
    assert r.status_code == 422


# -- HTML injection ----------------------------------------------------------------------


@pytest.fixture
def evil(simulator: ChessComSimulator) -> dict[str, Any]:
    return simulator.add_player(
        "evilplayer", name=SCRIPT, location=IMG, title="<b>GM</b>", league="</td><td>"
    )


async def test_chesscom_text_is_escaped_in_pages(
    app: FastAPI, client: httpx.AsyncClient, evil: dict[str, Any], session_factory: Factory
) -> None:
    r = await client.post(
        "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "evilplayer"}
    )
    assert r.status_code == 202
    # The JSON API returns the data as data, labelled as JSON, never as HTML.
    player = await client.get("/api/v1/players/evilplayer")
    assert player.json()["name"] == SCRIPT and player.json()["location"] == IMG
    assert player.headers["content-type"].startswith("application/json")

    async with session_factory() as s:
        sub = await s.scalar(select(EmailSubscription))
    assert sub is not None
    pages = []
    for purpose, path in (
        (Purpose.confirm, "/api/v1/subscriptions/confirm"),
        (Purpose.unsubscribe, "/api/v1/unsubscribe"),
        (Purpose.erase, "/api/v1/subscribers/erase"),
    ):
        token = signer(app).sign(purpose, sub.id, sub.email)
        pages.append(await client.get(path, params={"token": token}))
    token = signer(app).sign(Purpose.confirm, sub.id, sub.email)
    pages.append(await client.post("/api/v1/subscriptions/confirm", params={"token": token}))
    for page in pages:
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for raw in (SCRIPT, IMG, "<img", "<b>GM", "</td>"):
            assert raw not in page.text


@pytest.mark.parametrize("settings_overrides", [{"require_email_confirmation": False}])
async def test_a_hostile_username_from_chesscom_is_escaped_in_pages(
    app: FastAPI, client: httpx.AsyncClient, simulator: ChessComSimulator, session_factory: Factory
) -> None:
    """Chess.com answers for `sneaky` with a username field that carries markup."""
    simulator.add_player("sneaky")
    with simulator._lock:  # update_player() cannot set the `username` field itself
        simulator._players["sneaky"].profile["username"] = "sneaky<script>alert(2)</script>"
    r = await client.post(
        "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "sneaky"}
    )
    assert r.status_code < 500
    async with session_factory() as s:
        sub = await s.scalar(select(EmailSubscription))
    if sub is None:  # refused outright: fine
        assert 400 <= r.status_code < 500
        return
    token = signer(app).sign(Purpose.unsubscribe, sub.id, sub.email)
    for page in (
        await client.get("/api/v1/unsubscribe", params={"token": token}),
        await client.post("/api/v1/unsubscribe", params={"token": token}),
    ):
        assert page.status_code == 200
        assert "<script>alert(2)" not in page.text


def test_chesscom_text_is_escaped_in_the_live_match_email() -> None:
    game = GameRecord(
        event_id="e1",
        url="javascript:alert(3)",
        end_time=int(datetime(2024, 5, 1, 14, 0, tzinfo=UTC).timestamp()),
        start_time=0,
        time_class="blitz<svg onload=alert(4)>",
        time_control="180+2",
        white="evilplayer",
        black=IMG,
        black_rating=2800,
        white_result="<i>win</i>",
    )
    message = live(
        [game],
        player_username="evilplayer",
        player_name=SCRIPT + IMG,
        event_id="e1",
        row_id=1,
        unsubscribe_url="https://helper.example/api/v1/unsubscribe?token=abc",
    )
    html_part = message.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    for raw in ("<script", "<img", "<svg", "<i>win", "javascript:", "onerror=alert(1)>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # Headers carry no markup-driven line breaks either.
    for name, value in message.items():
        assert "\r" not in value and "\n" not in value, name


# -- SQL injection -----------------------------------------------------------------------


async def test_sql_injection_strings_are_refused_or_inert(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session_factory: Factory,
    populated: dict[str, int],
) -> None:
    for inj in SQLI:
        for params in ({"username": inj}, {"email": inj}, {"status": inj}, {"since": inj}):
            r = await client.get("/api/v1/notifications", params=params, headers=admin)
            assert r.status_code == 422, params
        for params in ({"limit": inj}, {"offset": inj}):
            assert (await client.get("/api/v1/players", params=params)).status_code == 422
        for method, path, headers in (
            ("GET", f"/api/v1/players/{inj}", {}),
            ("POST", f"/api/v1/players/{inj}/refresh", {}),
            ("GET", f"/api/v1/players/{inj}/subscriptions", admin),
            ("DELETE", f"/api/v1/players/{inj}", admin),
            ("DELETE", f"/api/v1/subscribers/{inj}", admin),
        ):
            r = await client.request(method, path, headers=headers)
            assert r.status_code in (404, 422), (method, path, r.status_code)
        for path in ("/api/v1/subscriptions/confirm", "/api/v1/unsubscribe"):
            r = await client.post(path, params={"token": inj}, headers=JSON)
            assert r.status_code == 400
        r = await client.post("/api/v1/players", json={"username": inj})
        assert r.status_code == 422
        r = await client.post("/api/v1/subscribers/erase-request", json={"email": inj})
        assert r.status_code == 422

    assert await counts(session_factory) == populated
    async with session_factory() as s:
        tables = set(
            (
                await s.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            ).all()
        )
    assert {"players", "email_subscriptions", "notification_logs", "api_tokens"} <= tables


async def test_quotes_in_a_valid_address_are_stored_as_data(
    client: httpx.AsyncClient, hikaru: object, admin: dict[str, str], session_factory: Factory
) -> None:
    email = "o'brien--@example.com"
    r = await client.post("/api/v1/subscriptions", json={"email": email, "username": "hikaru"})
    assert r.status_code == 202
    found = await client.get("/api/v1/notifications", params={"email": email}, headers=admin)
    assert found.status_code == 200 and found.json()["total"] == 1
    assert found.json()["items"][0]["email"] == email
    other = await client.get(
        "/api/v1/notifications", params={"email": "x'or'1'='1@example.com"}, headers=admin
    )
    assert other.status_code == 200 and other.json()["total"] == 0
    erased = await client.delete(f"/api/v1/subscribers/{email}", headers=admin)
    assert erased.status_code == 204
    async with session_factory() as s:
        assert await s.scalar(select(func.count()).select_from(EmailSubscription)) == 0
        assert await s.scalar(select(func.count()).select_from(Player)) == 1


# -- security headers --------------------------------------------------------------------


async def test_html_pages_carry_security_headers(
    app: FastAPI, client: httpx.AsyncClient, session_factory: Factory, populated: dict[str, int]
) -> None:
    async with session_factory() as s:
        sub = await s.scalar(select(EmailSubscription))
    assert sub is not None
    s_ = signer(app)
    confirm = s_.sign(Purpose.confirm, sub.id, sub.email)
    unsub = s_.sign(Purpose.unsubscribe, sub.id, sub.email)
    erase = s_.sign(Purpose.erase, sub.id, sub.email)
    pages = [
        await client.get("/api/v1/subscriptions/confirm", params={"token": confirm}),
        await client.get("/api/v1/unsubscribe", params={"token": unsub}),
        await client.get("/api/v1/subscribers/erase", params={"token": erase}),
        await client.get("/api/v1/subscriptions/confirm", params={"token": "bogus"}),
        await client.post("/api/v1/unsubscribe", params={"token": "bogus"}),
        await client.post("/api/v1/subscriptions/confirm", params={"token": confirm}),
        await client.post("/api/v1/unsubscribe", params={"token": unsub}),
        await client.post("/api/v1/subscribers/erase", params={"token": erase}),
    ]
    assert {p.status_code for p in pages} == {200, 400}
    for page in pages:
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";")}
        assert directives["frame-ancestors"] == "frame-ancestors 'none'"
        assert directives["default-src"] == "default-src 'none'"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-content-type-options"] == "nosniff"
        # No external assets: nothing is loaded from another origin.
        assert "http://" not in page.text and "https://" not in page.text
        assert "<script" not in page.text


# -- leaks -------------------------------------------------------------------------------

DOMAIN = "@leakcheck.net"  # not the docs' example.com, which /openapi.json shows
ADDRESSES = tuple(f"{who}.fan{DOMAIN}" for who in ("pending", "active", "left"))


async def _subscribe_everyone(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> tuple[list[httpx.Response], dict[Purpose, list[str]]]:
    """Pending, active and unsubscribed addresses; the anonymous answers and every link token."""
    answers = [
        await client.post("/api/v1/subscriptions", json={"email": email, "username": player})
        for email in ADDRESSES
        for player in ("hikaru", "magnus")
    ]
    async with factory() as s:
        subs = list((await s.scalars(select(EmailSubscription))).all())
    tokens = {p: [signer(app).sign(p, sub.id, sub.email) for sub in subs] for p in Purpose}
    for sub, confirm, unsub in zip(
        subs, tokens[Purpose.confirm], tokens[Purpose.unsubscribe], strict=True
    ):
        if sub.email != ADDRESSES[0]:
            answers.append(
                await client.post(LINK_PATHS[Purpose.confirm], params={"token": confirm})
            )
        if sub.email == ADDRESSES[2]:
            answers.append(
                await client.post(LINK_PATHS[Purpose.unsubscribe], params={"token": unsub})
            )
            answers.append(
                await client.post(
                    LINK_PATHS[Purpose.unsubscribe], params={"token": unsub}, headers=JSON
                )
            )
    answers.append(
        await client.post("/api/v1/subscribers/erase-request", json={"email": ADDRESSES[0]})
    )
    return answers, tokens


async def _crawl_get_routes(
    app: FastAPI, client: httpx.AsyncClient, tokens: dict[Purpose, list[str]]
) -> tuple[list[httpx.Response], set[str]]:
    """GET every documented route anonymously, link pages with every token, HTML and JSON."""
    answers, crawled = [], set()
    all_tokens = [{"token": t} for ts in tokens.values() for t in ts]
    for path, operations in app.openapi()["paths"].items():
        if "get" not in operations:
            continue
        params = {p["name"] for p in operations["get"].get("parameters", [])}
        url = path.replace("{username}", "hikaru")
        for query in all_tokens if "token" in params else [{}]:
            for headers in ({}, JSON):
                answers.append(await client.get(url, params=query, headers=headers))
        crawled.add(path)
    return answers, crawled


async def test_no_anonymous_response_ever_contains_an_email_address(
    app: FastAPI,
    client: httpx.AsyncClient,
    hikaru: object,
    simulator: ChessComSimulator,
    admin: dict[str, str],
    session_factory: Factory,
) -> None:
    simulator.add_player("magnus")
    anonymous, tokens = await _subscribe_everyone(app, client, session_factory)
    # Admin calls that name addresses (they must not leak into metrics or elsewhere).
    assert (await client.get("/api/v1/notifications", headers=admin)).status_code == 200
    await client.delete(f"/api/v1/subscribers/nobody.fan{DOMAIN}", headers=admin)
    await client.get("/api/v1/notifications", params={"email": ADDRESSES[1]}, headers=admin)

    crawl, crawled = await _crawl_get_routes(app, client, tokens)
    anonymous += crawl
    for extra in ("/docs", "/openapi.json", "/metrics", "/healthz", "/readyz", "/nope"):
        anonymous.append(await client.get(extra))
    anonymous.append(await client.get("/api/v1/notifications", params={"email": ADDRESSES[1]}))

    assert {
        "/api/v1/players",
        "/api/v1/players/{username}",
        "/api/v1/players/{username}/subscriptions",
        "/api/v1/unsubscribe",
        "/api/v1/subscriptions/confirm",
        "/api/v1/subscribers/erase",
        "/api/v1/notifications",
        "/api/v1/metrics",
    } <= crawled
    assert (
        sum(r.status_code == 200 and "text/html" in r.headers["content-type"] for r in crawl) > 10
    )
    for r in anonymous:
        seen = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        assert DOMAIN not in seen, (r.request.method, r.request.url, r.status_code)
        for email in (*ADDRESSES, f"nobody.fan{DOMAIN}"):
            assert email.split("@")[0] not in seen, (r.request.url, email)


SECRET_KEY = "test-secret-key-" + "x" * 32  # tests/conftest.py's make_settings


@pytest.fixture
async def raw_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Like `client`, but sees the 500 answer instead of the re-raised exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _assert_clean(r: httpx.Response) -> None:
    seen = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
    for leak in ("Traceback", 'File "', "sqlalchemy", "asyncpg", SECRET_KEY, ADMIN_TOKEN):
        assert leak not in seen, (r.request.url, r.status_code, leak)


async def test_error_answers_never_carry_a_traceback_or_a_secret(
    app: FastAPI,
    raw_client: httpx.AsyncClient,
    simulator: ChessComSimulator,
    hikaru: object,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert app.state.settings.secret_key == SECRET_KEY
    c = raw_client
    errors = [
        await c.get("/api/v1/notifications"),
        await c.get("/api/v1/notifications", headers={"Authorization": f"Bearer {SECRET_KEY}"}),
        await c.get("/api/v1/notifications", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"}),
        await c.get("/api/v1/players/ghost"),
        await c.get("/api/v1/players/" + ADMIN_TOKEN[:25]),
        await c.put("/api/v1/players"),
        await c.post("/api/v1/players", json={"username": ADMIN_TOKEN}),
        await c.post("/api/v1/players", json={"username": ["x"], "extra": ADMIN_TOKEN}),
        await c.post(
            "/api/v1/subscriptions", json={"email": f"{ADMIN_TOKEN}@", "username": "hikaru"}
        ),
        await c.get("/api/v1/notifications", params={"since": ADMIN_TOKEN}, headers=admin),
        await c.post("/api/v1/subscriptions/confirm", params={"token": SECRET_KEY}, headers=JSON),
        await c.get("/api/v1/unsubscribe", params={"token": ADMIN_TOKEN}),
        await c.post("/api/v1/players", content=b"x" * 100_000),
    ]
    simulator.fail(None, status=503, times=None)
    errors.append(await c.post("/api/v1/players", json={"username": "magnus"}))
    simulator.clear_faults()

    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"database password is {SECRET_KEY}, admin is {ADMIN_TOKEN}")

    monkeypatch.setattr(players_service, "list_players", boom)
    crashed = await c.get("/api/v1/players")
    assert crashed.status_code == 500 and crashed.json() == {"detail": "Internal server error"}
    errors.append(crashed)

    assert {r.status_code for r in errors} >= {400, 401, 404, 405, 413, 422, 500, 503}
    for r in errors:
        assert r.status_code >= 400
        _assert_clean(r)


@pytest.fixture
def rendered_logs(app: FastAPI) -> Iterator[io.StringIO]:
    """Everything logged, rendered exactly as the app's own handler renders it."""
    root = logging.getLogger()
    formatter = next(
        h.formatter
        for h in root.handlers
        if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
    )
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize(
    "settings_overrides",
    [{"log_level": "DEBUG"}, {"log_level": "DEBUG", "log_json": True}],
    ids=["console", "json"],
)
async def test_secrets_and_tokens_never_reach_the_logs(
    app: FastAPI,
    raw_client: httpx.AsyncClient,
    simulator: ChessComSimulator,
    hikaru: object,
    admin: dict[str, str],
    session_factory: Factory,
    rendered_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    cli_token = "cch_" + "k" * 43
    async with session_factory() as s, s.begin():
        s.add(ApiToken(name="ops", token_hash=hash_token(cli_token)))
    c = raw_client
    cli = {"Authorization": f"Bearer {cli_token}"}
    await c.post("/api/v1/subscriptions", json={"email": "fan@example.com", "username": "hikaru"})
    async with session_factory() as s:
        sub = await s.scalar(select(EmailSubscription))
    assert sub is not None
    link = signer(app).sign(Purpose.confirm, sub.id, sub.email)
    await c.get("/api/v1/subscriptions/confirm", params={"token": link})
    await c.post("/api/v1/subscriptions/confirm", params={"token": link})
    for headers in (admin, cli):
        await c.get("/api/v1/notifications", headers=headers)
        await c.get("/api/v1/players/hikaru/subscriptions", headers=headers)
        await c.delete("/api/v1/subscribers/nobody@example.com", headers=headers)
    await c.get("/api/v1/notifications", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"})
    # Failures are logged: a Chess.com outage and an unexpected crash, both with a token.
    simulator.fail(None, status=503, times=None)
    await c.post("/api/v1/players/hikaru/refresh", headers=admin)
    simulator.clear_faults()

    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(players_service, "list_players", boom)
    for headers in (admin, cli):
        started = time.monotonic()
        assert (await c.get("/api/v1/players", headers=headers)).status_code == 500
        assert time.monotonic() - started < 2, "logging one error must stay cheap"
    # What uvicorn's access log writes for a link with a token in it: the access logger's
    # own filters run, then the root's handlers (called directly: uvicorn's logging config,
    # run by other tests, changes this logger's level and propagation).
    access = logging.getLogger("uvicorn.access")
    record = access.makeRecord(
        access.name,
        logging.INFO,
        __file__,
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:50000", "GET", f"/api/v1/unsubscribe?token={link}", "1.1", 200),
        None,
    )
    assert access.filter(record)
    logging.getLogger().handle(record)

    rendered = rendered_logs.getvalue()
    assert "unhandled error" in rendered and "RuntimeError" in rendered, "logs were captured"
    assert "Traceback (most recent call last)" in rendered, "errors carry a readable traceback"
    assert "<traceback object" not in rendered
    assert "unsubscribe?token=" in rendered
    recorded = caplog.text + "".join(
        r.getMessage() + (r.exc_text or "") + str(r.args) for r in caplog.records
    )
    for secret in (ADMIN_TOKEN, cli_token, SECRET_KEY, link):
        assert secret not in rendered
        assert secret not in recorded
