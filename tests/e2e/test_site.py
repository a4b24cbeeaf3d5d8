"""The site in a real headless Chromium (issue 12, item 5).

A fan subscribes from `/`, confirms from the captured email, opens `/manage` from an
email, changes filters, and the next sessions obey them. Every page the fan sees is
scanned with axe-core (vendored in tests/e2e/vendor) in the same browser: no serious
or critical violation is allowed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import text

from tests.e2e.test_browser import (
    CHROMIUM,
    PHONE,
    Stack,
    Tab,
    _html_part,
    _link,
    _text_part,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs Debian's Chromium at /usr/bin/chromium",
    ),
]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()


async def axe_scan(tab: Tab, label: str) -> None:
    """Run axe-core on the current page; fail on any serious or critical violation."""
    result: dict[str, Any] = await tab.page.evaluate(
        AXE
        + "\n;axe.run(document, {resultTypes: ['violations']})"
        + ".then(r => ({violations: r.violations.map(v => ({id: v.id, impact: v.impact,"
        + " help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))}))"
    )
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{label}: {json.dumps(bad, indent=1)}"


async def _open_ok(tab: Tab, url: str, status: int = 200) -> None:
    response = await tab.page.goto(url)
    assert response is not None and response.status == status, await response.text()  # type: ignore[union-attr]


async def bad_link_then_erase(tab: Tab, manage: str, heading: str, erased: str) -> None:
    """A manage page (`heading`) opened with a bad token explains itself (401); then the
    page's erase form, refused by the browser until its box is ticked, erases (`erased`).
    Each page is scanned."""
    origin, _, _ = manage.partition("?")
    await _open_ok(tab, origin + "?token=nonsense", status=401)
    await axe_scan(tab, "manage page with a bad link")
    await tab.page.goto(manage)
    await tab.page.click("#erase")  # the box is required: the browser does not submit
    await expect(tab.page.locator("h1")).to_have_text(heading)
    await tab.page.check("#erase-confirm")
    await tab.page.click("#erase")
    await expect(tab.page.locator("#result")).to_have_text(erased)
    await axe_scan(tab, "erased")


async def _next_poll(stack: Stack) -> None:
    async with stack.engine.begin() as conn:
        await conn.execute(text("UPDATE players SET next_poll_at = now()"))
    await stack.worker.run_once()


async def test_subscribe_confirm_manage_and_filters_obeyed(stack: Stack, open_tab: Any) -> None:
    email = "fan@example.com"
    tab: Tab = await open_tab(PHONE)

    # Home: look the player up, see them, then subscribe.
    await _open_ok(tab, stack.origin + "/")
    await axe_scan(tab, "home")
    await tab.page.fill("#username", "Hikaru")
    await tab.page.fill("#email", email)
    await tab.page.click("#lookup")
    await expect(tab.page.locator("#player")).to_contain_text("Hikaru Nakamura")
    await expect(tab.page.locator("#player")).to_contain_text("GM")
    assert await stack.subscription(email, "hikaru") is None, "looking up stored something"
    await axe_scan(tab, "preview")
    await tab.page.click("#subscribe")
    await expect(tab.page.locator("#result")).to_have_text("Check your inbox")
    await axe_scan(tab, "subscribed")

    # Confirm from the captured email.
    confirm = _link(
        _text_part(await stack.next_email(email)), stack.origin, "/api/v1/subscriptions/confirm"
    )
    await _open_ok(tab, confirm)
    await axe_scan(tab, "confirm")
    await tab.page.click("#confirm")
    await expect(tab.page.locator("#result")).to_have_text("Subscription confirmed")
    await axe_scan(tab, "confirmed")
    sub = await stack.subscription(email, "hikaru")
    assert sub is not None and sub.confirmed_at is not None

    # A session: the notification email carries the manage link.
    await stack.worker.run_once()  # baseline
    now = int(time.time())
    stack.sim.add_game("hikaru", end_time=now - 30000, time_class="blitz", rated=True)
    await _next_poll(stack)
    notification = await stack.next_email(email)
    assert "hikaru" in notification.subject
    manage = _link(_text_part(notification), stack.origin, "/manage")
    assert manage in _html_part(notification)

    # Manage: only rated rapid games from now on.
    await _open_ok(tab, manage)
    await axe_scan(tab, "manage")
    prefix = f"#sub-{sub.id}"
    await tab.page.uncheck(f"{prefix}-bullet")
    await tab.page.uncheck(f"{prefix}-blitz")
    await tab.page.check(f"{prefix}-rated")
    await tab.page.click(f"{prefix}-save")
    await expect(tab.page.locator("#notice")).to_have_text("Your changes are saved.")
    await axe_scan(tab, "manage after saving")
    sub = await stack.subscription(email, "hikaru")
    assert sub is not None and sub.time_classes == ["rapid"] and sub.rated_only

    # The next sessions (each more than the session gap apart) obey: a rated blitz and a
    # casual rapid session bring nothing; a rated rapid one brings an email.
    stack.sim.add_game("hikaru", end_time=now - 24000, time_class="blitz", rated=True)
    await _next_poll(stack)
    stack.sim.add_game("hikaru", end_time=now - 18000, time_class="rapid", rated=False)
    await _next_poll(stack)
    await stack.worker.drain_outbox()
    assert len(stack.smtp.messages) == stack.seen, "a filtered-out session was emailed"
    stack.sim.add_game("hikaru", end_time=now - 12000, time_class="rapid", rated=True)
    await _next_poll(stack)
    assert "hikaru" in (await stack.next_email(email)).subject

    # Paused: a passing session brings nothing; resumed: the next one does.
    await tab.page.click(f"{prefix}-pause")
    await expect(tab.page.locator("#notice")).to_contain_text("Paused")
    await axe_scan(tab, "manage, paused")
    stack.sim.add_game("hikaru", end_time=now - 6000, time_class="rapid", rated=True)
    await _next_poll(stack)
    await stack.worker.drain_outbox()
    assert len(stack.smtp.messages) == stack.seen, "a paused subscription was emailed"
    await tab.page.click(f"{prefix}-resume")
    await expect(tab.page.locator("#notice")).to_have_text("Resumed.")
    stack.sim.add_game("hikaru", end_time=now - 60, time_class="rapid", rated=True)
    await _next_poll(stack)
    assert "hikaru" in (await stack.next_email(email)).subject
    tab.assert_only_own_origin(stack.origin)


async def test_manage_link_from_the_home_page_and_the_pages_axe_clean(
    stack: Stack, open_tab: Any
) -> None:
    await stack.subscribe("fan@example.com", "hikaru")
    confirmation = await stack.next_email("fan@example.com")
    tab: Tab = await open_tab()
    # The email-link pages are scanned too: confirm, and its result.
    await _open_ok(
        tab, _link(_text_part(confirmation), stack.origin, "/api/v1/subscriptions/confirm")
    )
    await axe_scan(tab, "confirm")
    await tab.page.click("#confirm")
    await expect(tab.page.locator("#result")).to_have_text("Subscription confirmed")
    await axe_scan(tab, "confirmed")
    await _open_ok(tab, stack.origin + "/")
    await tab.page.fill("#link_email", "fan@example.com")
    await tab.page.click("#send-link")
    await expect(tab.page.locator("#result")).to_have_text("Check your inbox")
    await axe_scan(tab, "link sent")
    message = await stack.next_email("fan@example.com")
    manage = _link(_text_part(message), stack.origin, "/manage")
    await _open_ok(tab, manage)
    await expect(tab.page.locator("h1")).to_have_text("Your settings")
    await axe_scan(tab, "manage (desktop)")
    # Delivery settings through the form.
    await tab.page.select_option("#timezone", "Asia/Kolkata")
    await tab.page.check("#mode-digest")
    await tab.page.select_option("#digest_hour", "7")
    await tab.page.check("#quiet_enabled")
    await tab.page.fill("#quiet_start", "22:30")
    await tab.page.fill("#quiet_end", "06:00")
    await tab.page.click("#save-preferences")
    await expect(tab.page.locator("#notice")).to_have_text("Your delivery settings are saved.")
    me = (
        await stack.api.get(
            "/api/v1/me", headers={"Authorization": "Bearer " + manage.split("token=", 1)[1]}
        )
    ).json()
    assert me["timezone"] == "Asia/Kolkata"
    assert me["delivery"] == {
        "mode": "digest",
        "digest_hour": 7,
        "quiet_hours": {"start": "22:30", "end": "06:00"},
    }
    await bad_link_then_erase(tab, manage, "Your settings", "Your data has been deleted")
    assert await stack.rows_about("fan@example.com") == (0, 0)
    tab.assert_only_own_origin(stack.origin, page_status=401)


async def test_the_axe_scan_does_fail_on_an_inaccessible_page(open_tab: Any) -> None:
    """The scan above could fail: an unlabelled field and grey-on-grey text are found."""
    tab: Tab = await open_tab()
    await tab.page.set_content(
        '<html><body><main><input type="text">'
        '<p style="color:#bbb;background:#ccc">faint</p></main></body></html>'
    )
    with pytest.raises(AssertionError) as failed:
        await axe_scan(tab, "bad page")
    assert '"label"' in str(failed.value) and "color-contrast" in str(failed.value)


async def test_home_and_manage_fit_a_phone(stack: Stack, open_tab: Any) -> None:
    await stack.subscribe("fan@example.com", "hikaru")
    await stack.next_email("fan@example.com")
    tab: Tab = await open_tab(PHONE)
    await _open_ok(tab, stack.origin + "/")
    await tab.page.fill("#link_email", "fan@example.com")
    await tab.page.click("#send-link")
    manage = _link(_text_part(await stack.next_email("fan@example.com")), stack.origin, "/manage")
    for url in (stack.origin + "/", manage):
        await _open_ok(tab, url)
        width = await tab.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{url}: horizontal scrolling ({width}px)"
        font_px = await tab.page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('main p')).fontSize)"
        )
        assert font_px >= 14
        for button in await tab.page.locator("button").all():
            box = await button.bounding_box()
            assert box is not None and box["height"] >= 40, "a button too small to tap"
    tab.assert_only_own_origin(stack.origin)
