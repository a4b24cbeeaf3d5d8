"""Where things live: the API prefix shared by the routers, email links and pages."""

from __future__ import annotations

API_PREFIX = "/api/v1"

# The routes that links in emails open in a browser.
PAGE_PATHS = frozenset(
    API_PREFIX + path for path in ("/subscriptions/confirm", "/unsubscribe", "/subscribers/erase")
)
