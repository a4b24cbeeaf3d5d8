"""The email links, followed in a real headless Chromium (issue 4, item 5).

The API is served by uvicorn on a real port; the worker delivers real emails to the
SMTP fake; the test takes each link from a captured email, opens it in Debian's
Chromium, checks that opening it changed nothing, clicks the button and checks the
database. Pages must load nothing but themselves and fit a phone screen.
"""

from __future__ import annotations

import html
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from playwright.async_api import (
    Browser,
    Page,
    Request,
    ViewportSize,
    async_playwright,
    expect,
)
from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.main import create_app
from app.models import EmailSubscription, NotificationLog, Player
from tests.conftest import chesscom_client, make_settings
from tests.fakes.chesscom import ChessComSimulator
from tests.fakes.server import bound_socket, serve_on_socket, socket_url
from tests.fakes.smtp import ReceivedMessage, SMTPServerFake, running_smtp_server
from worker.runner import Worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    # Skipped only on a developer machine without Chromium; in CI (.ci/run installs
    # it) a missing browser must fail, not silently skip.
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class Stack:
    """The served app, its worker, the SMTP fake and a database handle."""

    origin: str
    settings: Settings
    api: httpx.AsyncClient
    worker: Worker
    smtp: SMTPServerFake
    sim: ChessComSimulator
    engine: AsyncEngine
    seen: int = field(default=0)

    async def next_email(self, to: str) -> ReceivedMessage:
        """Deliver the outbox and return the one new message, checking its recipient."""
        await self.worker.drain_outbox()
        messages = await self.smtp.wait_for(self.seen + 1)
        assert len(messages) == self.seen + 1, [m.subject for m in messages[self.seen :]]
        self.seen += 1
        message = messages[-1]
        assert message.rcpt_tos == (to,)
        return message

    async def subscription(self, recipient: str, username: str) -> EmailSubscription | None:
        """The subscription of an address or a webhook URL to a player, if any."""
        async with create_session_factory(self.engine)() as session:
            return await session.scalar(
                select(EmailSubscription)
                .join(Player, Player.player_id == EmailSubscription.player_id)
                .where(
                    or_(
                        EmailSubscription.email == recipient,
                        EmailSubscription.webhook_url == recipient,
                        EmailSubscription.push_endpoint == recipient,
                    ),
                    Player.username == username,
                )
            )

    async def rows_about(self, email: str) -> tuple[int, int]:
        """(subscriptions, notification logs) held about an address."""
        async with self.engine.connect() as conn:
            subs = await conn.scalar(select(func.count()).where(EmailSubscription.email == email))
            logs = await conn.scalar(
                select(func.count())
                .select_from(NotificationLog)
                .join(EmailSubscription, EmailSubscription.id == NotificationLog.subscription_id)
                .where(EmailSubscription.email == email)
            )
        return subs or 0, logs or 0

    async def poll_now(self) -> None:
        """Make every player due and run one worker pass."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE players SET next_poll_at = now()"))
        await self.worker.run_once()

    async def subscribe(self, email: str, username: str) -> None:
        response = await self.api.post(
            "/api/v1/subscriptions", json={"email": email, "username": username}
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"status": "pending_confirmation"}


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    """Settings a test module changes for its stack (e.g. loopback webhook receivers)."""
    return {}


@pytest.fixture
async def stack(
    clean_db: str,
    tmp_path: Path,
    simulator: ChessComSimulator,
    chesscom_transport: httpx.AsyncBaseTransport,
    stack_overrides: dict[str, object],
) -> AsyncIterator[Stack]:
    simulator.add_player("Hikaru", name="Hikaru Nakamura", title="GM")
    simulator.add_player("Firouzja2003", name="Alireza Firouzja", title="GM")
    sock = bound_socket()
    origin = socket_url(sock)
    with running_smtp_server() as smtp:
        settings = make_settings(
            clean_db,
            tmp_path / "data",
            public_base_url=origin,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            email_from="Chess.com Helper <alerts@helper.test>",
            poll_interval_seconds=300,
            delivery_retry_base_seconds=0.05,
            **stack_overrides,
        )
        app = create_app(settings, chesscom_transport=chesscom_transport)
        worker = Worker(settings, client=chesscom_client(settings, chesscom_transport, timeout=5))
        engine = create_engine(settings, pool_size=2, max_overflow=0)
        try:
            with serve_on_socket(app, sock, startup_timeout=15):
                async with httpx.AsyncClient(base_url=origin, timeout=10) as api:
                    yield Stack(origin, settings, api, worker, smtp, simulator, engine)
        finally:
            await worker.aclose()
            await engine.dispose()


# -- the browser ------------------------------------------------------------------


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@dataclass
class Tab:
    page: Page
    requests: list[Request]
    console_errors: list[str]

    def assert_only_own_origin(self, origin: str, *, page_status: int = 200) -> None:
        """Every request the pages made went to the app (CSP-blocked ones are recorded
        too), and the console shows no CSP violation or failed load (but the page's own
        `page_status`, which Chromium logs as an error)."""
        assert self.requests, "the page made no request at all?"
        foreign = [r.url for r in self.requests if not r.url.startswith(origin + "/")]
        assert foreign == [], f"the page loaded external resources: {foreign}"
        expected = f"the server responded with a status of {page_status} "
        assert [e for e in self.console_errors if expected not in e] == []


@pytest.fixture
async def open_tab(browser: Browser) -> AsyncIterator[Any]:
    contexts = []

    async def factory(viewport: ViewportSize | None = None) -> Tab:
        context = await browser.new_context(viewport=viewport or {"width": 1280, "height": 800})
        contexts.append(context)
        page = await context.new_page()
        # A bound on waiting for a page, not a timing check: at load 15 a page of the
        # served app once took more than 10 s to load.
        page.set_default_timeout(30_000)
        requests: list[Request] = []
        errors: list[str] = []
        page.on("request", lambda request: requests.append(request))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        return Tab(page, requests, errors)

    yield factory
    for context in contexts:
        await context.close()


async def _open(tab: Tab, url: str, *, status: int = 200) -> None:
    response = await tab.page.goto(url)
    assert response is not None
    assert response.status == status, await response.text()
    headers = await response.all_headers()
    csp = headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers.get("referrer-policy") == "no-referrer"
    assert headers.get("content-type", "").startswith("text/html")


async def _click(tab: Tab, button: str, *, expected_path: str) -> Request:
    """Press the page's button; returns the POST it sent (checked to stay on the page's
    own endpoint, with no Referer leaking the token)."""
    locator = tab.page.locator(button)
    await expect(locator).to_be_visible()
    async with tab.page.expect_response(lambda r: r.request.method == "POST") as posted:
        await locator.click()
    response = await posted.value
    assert response.status == 200, await response.text()
    request = response.request
    assert urlsplit(request.url).path == expected_path
    assert "referer" not in await request.all_headers()
    await tab.page.wait_for_load_state()
    return request


async def _see(tab: Tab, url: str, heading: str, *, mentions: str = "") -> None:
    """Open `url`: its page has `heading` and mentions `mentions`."""
    await _open(tab, url)
    await expect(tab.page.locator("h1")).to_have_text(heading)
    await expect(tab.page.locator("main")).to_contain_text(mentions)


async def _press(tab: Tab, url: str, button: str, *, expected_path: str, result: str) -> None:
    """Open `url`, press its button and see the page that says `result`."""
    await _open(tab, url)
    await _click(tab, button, expected_path=expected_path)
    await expect(tab.page.locator("#result")).to_have_text(result)


def _text_part(message: ReceivedMessage) -> str:
    part = message.message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _html_part(message: ReceivedMessage) -> str:
    part = message.message.get_body(("html",))
    assert part is not None
    return html.unescape(str(part.get_content()))


def _link(body: str, origin: str, path: str) -> str:
    """The one link in `body` to `origin` + `path`."""
    found = {u for u in _URL.findall(body) if u.startswith(f"{origin}{path}?token=")}
    assert len(found) == 1, f"expected one {path} link, found {found}"
    return str(found.pop())


def _tampered(url: str) -> str:
    """The same link with one character of its signature changed."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    token = query["token"]
    query["token"] = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- the flows --------------------------------------------------------------------


async def test_confirm_link_from_the_email(stack: Stack, open_tab: Any) -> None:
    await stack.subscribe("fan@example.com", "hikaru")
    message = await stack.next_email("fan@example.com")
    url = _link(_text_part(message), stack.origin, "/api/v1/subscriptions/confirm")
    assert url in _html_part(message)

    tab: Tab = await open_tab()
    await _see(tab, url, "Confirm your subscription", mentions="hikaru")
    sub = await stack.subscription("fan@example.com", "hikaru")
    assert sub is not None and sub.confirmed_at is None, "opening the link changed state"

    await _click(tab, "#confirm", expected_path="/api/v1/subscriptions/confirm")
    await expect(tab.page.locator("#result")).to_have_text("Subscription confirmed")
    tab.assert_only_own_origin(stack.origin)
    sub = await stack.subscription("fan@example.com", "hikaru")
    assert sub is not None and sub.is_active and sub.confirmed_at is not None
    assert sub.consent_user_agent is not None and "HeadlessChrome" in sub.consent_user_agent
    assert sub.consent_ip == "127.0.0.1"
    confirmed_at = sub.confirmed_at

    # Going back and pressing again is harmless (idempotent), and keeps the first consent.
    await _press(
        tab,
        url,
        "#confirm",
        expected_path="/api/v1/subscriptions/confirm",
        result="Subscription confirmed",
    )
    sub = await stack.subscription("fan@example.com", "hikaru")
    assert sub is not None and sub.confirmed_at == confirmed_at


async def test_confirm_page_on_a_phone(stack: Stack, open_tab: Any, tmp_path: Path) -> None:
    await stack.subscribe("phone@example.com", "hikaru")
    message = await stack.next_email("phone@example.com")
    url = _link(_text_part(message), stack.origin, "/api/v1/subscriptions/confirm")

    tab: Tab = await open_tab(PHONE)
    await _open(tab, url)
    shot = tmp_path / "confirm-390x844.png"
    await tab.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000

    box = await tab.page.locator("#confirm").bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], "button below the fold"
    assert box["height"] >= 40, "the button is too small to tap"
    scroll_width = await tab.page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"horizontal scrolling: {scroll_width}px"
    font_px = await tab.page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('main p')).fontSize)"
    )
    assert font_px >= 14, "text too small to read on a phone"
    tab.assert_only_own_origin(stack.origin)


async def test_unsubscribe_links_from_a_live_session_email(stack: Stack, open_tab: Any) -> None:
    await stack.subscribe("fan@example.com", "hikaru")
    confirm = _link(
        _text_part(await stack.next_email("fan@example.com")),
        stack.origin,
        "/api/v1/subscriptions/confirm",
    )
    confirmed = await stack.api.post(confirm, headers={"Accept": "application/json"})
    assert confirmed.status_code == 200, confirmed.text

    await stack.worker.run_once()  # baseline: the games already played never notify
    assert len(stack.smtp.messages) == stack.seen
    stack.sim.add_game("hikaru", end_time=int(time.time()) - 120, opponent="anishgiri")
    await stack.poll_now()
    message = await stack.next_email("fan@example.com")
    assert "hikaru" in message.subject

    header = str(message.message["List-Unsubscribe"])
    assert message.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    from_header = _link(header, stack.origin, "/api/v1/unsubscribe")
    assert header.strip() == f"<{from_header}>"
    from_body = _link(_text_part(message), stack.origin, "/api/v1/unsubscribe")
    assert from_body in _html_part(message)

    tab: Tab = await open_tab()
    await _see(tab, from_header, "Unsubscribe", mentions="hikaru")
    sub = await stack.subscription("fan@example.com", "hikaru")
    assert sub is not None and sub.is_active, "opening the link changed state"

    await _click(tab, "#unsubscribe", expected_path="/api/v1/unsubscribe")
    await expect(tab.page.locator("#result")).to_have_text("You are unsubscribed")
    sub = await stack.subscription("fan@example.com", "hikaru")
    assert sub is not None and sub.is_active is False and sub.unsubscribed_at is not None
    unsubscribed_at = sub.unsubscribed_at

    # The body's link does the same, and pressing it again is harmless.
    await _press(
        tab,
        from_body,
        "#unsubscribe",
        expected_path="/api/v1/unsubscribe",
        result="You are unsubscribed",
    )
    tab.assert_only_own_origin(stack.origin)
    sub = await stack.subscription("fan@example.com", "hikaru")
    assert sub is not None and sub.is_active is False and sub.unsubscribed_at == unsubscribed_at

    # And the next session emails nobody.
    stack.sim.add_game("hikaru", end_time=int(time.time()) + 3 * 3600)
    await stack.poll_now()
    assert len(stack.smtp.messages) == stack.seen


async def test_erase_link_deletes_every_row_about_the_address(stack: Stack, open_tab: Any) -> None:
    for username in ("hikaru", "firouzja2003"):
        await stack.subscribe("leaving@example.com", username)
        await stack.next_email("leaving@example.com")
    await stack.subscribe("staying@example.com", "hikaru")
    await stack.next_email("staying@example.com")
    assert await stack.rows_about("leaving@example.com") == (2, 2)

    asked = await stack.api.post(
        "/api/v1/subscribers/erase-request", json={"email": "leaving@example.com"}
    )
    assert asked.status_code == 202, asked.text
    message = await stack.next_email("leaving@example.com")
    url = _link(_text_part(message), stack.origin, "/api/v1/subscribers/erase")
    assert url in _html_part(message)

    tab: Tab = await open_tab()
    await _see(tab, url, "Delete your data")
    assert await stack.rows_about("leaving@example.com") == (2, 3), "opening the link deleted"

    await _click(tab, "#erase", expected_path="/api/v1/subscribers/erase")
    await expect(tab.page.locator("#result")).to_have_text("Your data has been deleted")
    tab.assert_only_own_origin(stack.origin)
    assert await stack.rows_about("leaving@example.com") == (0, 0)
    assert await stack.rows_about("staying@example.com") == (1, 1)

    # The link, followed again, stays harmless.
    await _press(
        tab,
        url,
        "#erase",
        expected_path="/api/v1/subscribers/erase",
        result="Your data has been deleted",
    )
    assert await stack.rows_about("staying@example.com") == (1, 1)


async def test_tampered_links_show_the_error_page(stack: Stack, open_tab: Any) -> None:
    await stack.subscribe("fan@example.com", "hikaru")
    message = await stack.next_email("fan@example.com")
    confirm = _link(_text_part(message), stack.origin, "/api/v1/subscriptions/confirm")
    token = dict(parse_qsl(urlsplit(confirm).query))["token"]

    tab: Tab = await open_tab(PHONE)
    bad_links = [
        _tampered(confirm),
        # A confirm token is no unsubscribe or erase token (one salt per purpose).
        f"{stack.origin}/api/v1/unsubscribe?token={token}",
        f"{stack.origin}/api/v1/subscribers/erase?token={token}",
        f"{stack.origin}/api/v1/subscriptions/confirm?token=%3Cscript%3Ealert(1)%3C/script%3E",
    ]
    for bad in bad_links:
        await _open(tab, bad, status=400)
        await expect(tab.page.locator("#error")).to_have_text("This link does not work")
        assert await tab.page.locator("button").count() == 0
        assert "<script>" not in await tab.page.content()
        scroll_width = await tab.page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= PHONE["width"]
    tab.assert_only_own_origin(stack.origin, page_status=400)

    sub = await stack.subscription("fan@example.com", "hikaru")
    assert sub is not None and sub.is_active and sub.confirmed_at is None


async def test_api_docs_render_without_the_internet(stack: Stack, open_tab: Any) -> None:
    # Swagger UI comes from the app itself: no CDN, so it works on an offline server.
    tab: Tab = await open_tab()
    response = await tab.page.goto(f"{stack.origin}/docs")
    assert response is not None and response.status == 200
    operations = tab.page.locator(".opblock")
    await expect(operations.first).to_be_visible()
    assert await operations.count() >= 15
    await expect(tab.page.locator(".info .title")).to_contain_text("Chess.com Helper")
    foreign = [r.url for r in tab.requests if not r.url.startswith(stack.origin + "/")]
    assert foreign == [], f"the docs loaded external resources: {foreign}"
