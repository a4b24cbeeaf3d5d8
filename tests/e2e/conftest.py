"""The browser fixtures of test_browser.py (served app, worker, SMTP fake, Chromium),
shared with the other browser tests of this folder."""

from tests.e2e.test_browser import browser, open_tab, stack, stack_overrides

__all__ = ["browser", "open_tab", "stack", "stack_overrides"]
