"""A webhook managed from the link in its own messages, in headless Chromium (issue 13).

A channel owner subscribes a Discord-like webhook from `/` (choosing time classes), the
verification message reaches a real receiver on loopback, its confirm link is opened
and pressed; then the manage link of a posted alert opens the webhook's page, where
filters, pause and resume are changed, and the next sessions obey them; the link is
replaced (the old one stops working) and the webhook erased. Every page is
scanned with axe-core (zero serious or critical violations), and loads nothing foreign.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import expect

from tests.e2e.test_browser import CHROMIUM, Stack, Tab, _link
from tests.e2e.test_site import _open_ok, axe_scan, bad_link_then_erase
from tests.fakes.webhooks import Receiver, serve_receiver

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs Debian's Chromium at /usr/bin/chromium",
    ),
]


@pytest.fixture
def stack_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}  # the receiver listens on 127.0.0.1


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver("discord") as r:
        yield r


async def _posts(stack: Stack, receiver: Receiver, expected: int) -> str:
    """Run the worker once (poll + outbox); `expected` posts in all; the newest's text."""
    await stack.poll_now()
    assert len(receiver.requests) == expected, [r.json()["content"] for r in receiver.requests]
    return str(receiver.requests[-1].json()["content"])


async def test_webhook_subscribed_from_home_then_managed_from_its_messages(
    stack: Stack, receiver: Receiver, open_tab: Any
) -> None:
    tab: Tab = await open_tab()
    hook = receiver.url("/api/webhooks/1/S3CRET")

    # Subscribe from the home page: blitz and rapid only.
    await _open_ok(tab, stack.origin + "/")
    await axe_scan(tab, "home")
    await tab.page.fill("#hook_username", "Hikaru")
    await tab.page.fill("#webhook_url", hook)
    await tab.page.select_option("#webhook_format", "discord")
    await tab.page.uncheck("#hook-bullet")
    await tab.page.click("#subscribe_webhook")
    await expect(tab.page.locator("#result")).to_have_text("Check your channel")
    await axe_scan(tab, "webhook subscribed")

    # The verification message: confirm link and manage link.
    verification = await _posts(stack, receiver, 1)  # also the baseline poll
    _link(verification, stack.origin, "/manage/webhook")
    await _open_ok(tab, _link(verification, stack.origin, "/api/v1/subscriptions/confirm"))
    await tab.page.click("#confirm")
    await expect(tab.page.locator("#result")).to_have_text("Subscription confirmed")

    now = int(time.time())
    stack.sim.add_game("hikaru", end_time=now - 30000, time_class="blitz")
    manage = _link(await _posts(stack, receiver, 2), stack.origin, "/manage/webhook")

    # The alert's manage link: the webhook's page, without the URL's secret path.
    await _open_ok(tab, manage)
    await expect(tab.page.locator("h1")).to_have_text("Alerts posted to this webhook")
    assert "S3CRET" not in await tab.page.content()
    await axe_scan(tab, "webhook manage")
    sub = await stack.subscription(hook, "hikaru")
    assert sub is not None and sub.time_classes == ["blitz", "rapid"]
    prefix = f"#sub-{sub.id}"
    await expect(tab.page.locator(f"{prefix}-bullet")).not_to_be_checked()

    # Rapid only: a blitz session is not posted, a rapid one is.
    await tab.page.uncheck(f"{prefix}-blitz")
    await tab.page.click(f"{prefix}-save")
    await expect(tab.page.locator("#notice")).to_have_text("Your changes are saved.")
    await axe_scan(tab, "webhook manage after saving")
    stack.sim.add_game("hikaru", end_time=now - 24000, time_class="blitz")
    await _posts(stack, receiver, 2)
    stack.sim.add_game("hikaru", end_time=now - 18000, time_class="rapid")
    await _posts(stack, receiver, 3)

    # Paused: nothing; resumed: the next session is posted.
    await tab.page.click(f"{prefix}-pause")
    await expect(tab.page.locator("#notice")).to_contain_text("Paused")
    await axe_scan(tab, "webhook manage, paused")
    stack.sim.add_game("hikaru", end_time=now - 12000, time_class="rapid")
    await _posts(stack, receiver, 3)
    await tab.page.click(f"{prefix}-resume")
    await expect(tab.page.locator("#notice")).to_have_text("Resumed.")
    stack.sim.add_game("hikaru", end_time=now - 6000, time_class="rapid")
    await _posts(stack, receiver, 4)

    # Replacing the link: the page moves to a new one, the old one stops working.
    await tab.page.wait_for_timeout(1100)  # revocation is to the second
    await tab.page.click("#new-link")
    await expect(tab.page.locator("#notice")).to_contain_text("Replaced")
    await axe_scan(tab, "webhook manage, link replaced")
    old, manage = manage, tab.page.url.split("&done=", 1)[0]
    await _open_ok(tab, old, status=401)
    await _open_ok(tab, manage)

    # A bad link explains itself; erasing needs the box ticked, then ends everything.
    await bad_link_then_erase(
        tab, manage, "Alerts posted to this webhook", "This webhook has been erased"
    )
    assert await stack.subscription(hook, "hikaru") is None
    tab.assert_only_own_origin(stack.origin, page_status=401)
