"""The player pages in a real headless Chromium (issue 21, item 6).

Home and a player's page at 360 px and 1280 px wide: axe-core finds no serious or
critical violation, nothing scrolls sideways, nothing is loaded from elsewhere. A fan
finds a player from the search box, tracks one we did not know, and lands on their
page; an unknown key shows the 404 page.

With `SCREENSHOTS=1` the test also writes the README's screenshots to docs/.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import ViewportSize, expect
from sqlalchemy import text

from app.db import create_session_factory
from app.models import NotificationType
from app.notifications.outbox import record_event
from app.notifications.payloads import GameRecord, live_session
from tests.e2e.test_browser import CHROMIUM, Stack, Tab
from tests.e2e.test_site import _open_ok, axe_scan

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs Debian's Chromium at /usr/bin/chromium",
    ),
]

NARROW: ViewportSize = {"width": 360, "height": 780}
WIDE: ViewportSize = {"width": 1280, "height": 900}
DOCS = Path(__file__).resolve().parents[2] / "docs"
HOUR = 3600


async def _season(stack: Stack, username: str) -> None:
    """Eight weeks of evening sessions (UTC), as the worker records them: the picture of
    when the player plays has something to show."""
    now = int(time.time())
    async with create_session_factory(stack.engine)() as session, session.begin():
        player_id = await session.scalar(
            text("SELECT player_id FROM players WHERE username = :u"), {"u": username}
        )
        for day in range(1, 57):
            if day % 7 in (2, 4):  # two quiet days a week
                continue
            start = (now // 86400 - day) * 86400 + (17 + day % 4) * HOUR
            games = [
                GameRecord(
                    f"{username}-{day}-{g}",
                    f"https://www.chess.com/game/live/{day * 10 + g}",
                    start + (g + 1) * 600,
                    start + g * 600,
                    ("blitz", "bullet", "rapid")[(day + g) % 3],
                    "180+2",
                    username,
                    "opponent" + str(g),
                )
                for g in range(2 + day % 5)
            ]
            await record_event(
                session,
                NotificationType.live_match,
                games[0].event_id,
                live_session(username, None, start, games),
                player_id=player_id,
                occurred_at=datetime.fromtimestamp(start, UTC),
            )


async def _check(tab: Tab, label: str, viewport: ViewportSize, shot: str | None) -> None:
    await axe_scan(tab, f"{label} at {viewport['width']} px")
    width = await tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{label}: scrolls sideways ({width} px)"
    if shot and os.environ.get("SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        await tab.page.screenshot(path=str(DOCS / shot), full_page=True)


async def test_home_and_player_page_on_a_phone_and_a_desktop(stack: Stack, open_tab: Any) -> None:
    for name in ("hikaru", "firouzja2003"):
        r = await stack.api.post("/api/v1/players", json={"username": name})
        assert r.status_code == 201
    await stack.worker.run_once()  # baseline
    await _season(stack, "hikaru")
    stack.sim.add_game("hikaru", end_time=int(time.time()) - 90, time_control="180+2")
    await stack.poll_now()

    for viewport, size in ((NARROW, "360"), (WIDE, "1280")):
        tab: Tab = await open_tab(viewport)
        await _open_ok(tab, stack.origin + "/")
        await expect(tab.page.locator("#live")).to_contain_text("hikaru")
        await _check(tab, "home", viewport, f"home-{size}.png")

        await tab.page.click("#live a[href='/p/hikaru']")
        await expect(tab.page.locator("h1")).to_contain_text("hikaru")
        await expect(tab.page.locator("#state")).to_have_text("Playing now")
        await expect(tab.page.locator("#pattern-summary")).to_contain_text("Most often")
        await _check(tab, "player page", viewport, f"player-{size}.png")
        await tab.page.click("details summary")
        await expect(tab.page.locator("#pattern-days")).to_contain_text("Monday")
        await axe_scan(tab, f"player page, details open, {size} px")
        tab.assert_only_own_origin(stack.origin)


async def test_find_track_and_unknown_pages(stack: Stack, open_tab: Any) -> None:
    tab: Tab = await open_tab(NARROW)
    await _open_ok(tab, stack.origin + "/")
    await tab.page.fill("#find", "Firouzja2003")
    await tab.page.click("#find-button")
    await expect(tab.page.locator("h1")).to_have_text("We do not track firouzja2003 yet")
    await expect(tab.page.locator("#player")).to_contain_text("Alireza Firouzja")
    await _check(tab, "track this player", NARROW, None)
    await tab.page.click("#track")
    await expect(tab.page.locator("h1")).to_contain_text("firouzja2003")
    assert tab.page.url == stack.origin + "/p/firouzja2003"
    await _check(tab, "a new player's page", NARROW, None)

    await tab.page.goto(stack.origin + "/")
    await tab.page.fill("#find", "nosuchplayer")
    await tab.page.click("#find-button")
    await expect(tab.page.locator("#find_error")).to_contain_text("Chess.com has no player")
    await _check(tab, "home with a search error", NARROW, None)

    await _open_ok(tab, stack.origin + "/p/nobody", status=404)
    await expect(tab.page.locator("h1")).to_have_text("We do not track this player")
    await _check(tab, "404 page", NARROW, None)
    tab.assert_only_own_origin(stack.origin, page_status=404)
