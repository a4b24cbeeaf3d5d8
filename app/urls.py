"""Where things live: the API prefix, the email-link routes, and the one builder of link URLs.

Routers declare the email-link routes with these paths, the rate limiter keys link POSTs by
them, the error handler recognises the pages by them, and every email and page builds its
links with `link_url` / `link_target` / `manage_url`. A link's path is written here only.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

from app.tokens import Purpose

API_PREFIX = "/api/v1"

# The email-link routes, relative to API_PREFIX (as the routers declare them).
CONFIRM_ROUTE = "/subscriptions/confirm"
UNSUBSCRIBE_ROUTE = "/unsubscribe"
ERASE_ROUTE = "/subscribers/erase"

# The subscriber's own page (SPEC §4: `{PUBLIC_BASE_URL}/manage?token=…`), at the root.
MANAGE_PATH = "/manage"
# A webhook's own page (issue 13), reached from the link in every message posted to it;
# its forms post to sub-paths of it.
WEBHOOK_MANAGE_PATH = MANAGE_PATH + "/webhook"
# A Telegram chat's own page, reached from the link in the bot's /start and /list replies.
TELEGRAM_MANAGE_PATH = MANAGE_PATH + "/telegram"

# Absolute paths of the pages a link opens, by the purpose its token was signed for.
LINK_PATHS: dict[Purpose, str] = {
    Purpose.confirm: API_PREFIX + CONFIRM_ROUTE,
    Purpose.unsubscribe: API_PREFIX + UNSUBSCRIBE_ROUTE,
    Purpose.erase: API_PREFIX + ERASE_ROUTE,
}

# The site's own pages (issue 12): home with its two forms, and the manage page whose
# forms post to sub-paths of MANAGE_PATH.
HOME_PATH = "/"
SUBSCRIBE_PATH = "/subscribe"
SEND_LINK_PATH = "/send-link"
SUBSCRIBE_WEBHOOK_PATH = "/subscribe-webhook"
# "Follow in Telegram" (only with a bot): a pending subscription, then off to its deep link.
SUBSCRIBE_TELEGRAM_PATH = "/subscribe-telegram"
# A player's page is PLAYER_PATH + key (issue 21); its feed and badge are below it. The
# home page's search box posts to FIND_PATH, and "track this player" to TRACK_PATH.
PLAYER_PATH = "/p/"
FIND_PATH = "/find"
TRACK_PATH = "/track"


def is_site_path(path: str) -> bool:
    """The home page, its forms' targets, the manage page and its forms' targets, and a
    player's page (not its feed or badge, which are not pages)."""
    return (
        path in (HOME_PATH, SUBSCRIBE_PATH, SEND_LINK_PATH, SUBSCRIBE_WEBHOOK_PATH)
        or path in (SUBSCRIBE_TELEGRAM_PATH, FIND_PATH, TRACK_PATH)
        or path == MANAGE_PATH
        or path.startswith(MANAGE_PATH + "/")
        or (path.startswith(PLAYER_PATH) and "/" not in path[len(PLAYER_PATH) :])
    )


def player_path(key: object) -> str:
    """The path of a player's page; `key` is a PlayerKey (its str is the key)."""
    return f"{PLAYER_PATH}{key}"


# The routes that links in emails open in a browser: their errors are pages, not JSON.
PAGE_PATHS = frozenset(LINK_PATHS.values())


def _with_token(path: str, token: str, **query: str) -> str:
    return f"{path}?{urlencode({'token': token, **query})}"


def link_target(purpose: Purpose, token: str) -> str:
    """The path and query of a link (no host): a page's form posts back to it."""
    return _with_token(LINK_PATHS[purpose], token)


def link_url(base_url: str, purpose: Purpose, token: str) -> str:
    """The absolute URL of an email link: `base_url` is `Settings.public_url`."""
    return base_url.rstrip("/") + link_target(purpose, token)


def manage_target(token: str, *, path: str = MANAGE_PATH, **query: str) -> str:
    """A manage page's path and query (no host), e.g. to send a browser back to it:
    the address's (`MANAGE_PATH`) or a webhook's (`WEBHOOK_MANAGE_PATH`)."""
    return _with_token(path, token, **query)


def manage_url(base_url: str, token: str, *, path: str = MANAGE_PATH) -> str:
    """The absolute URL of a manage page for a signed manage token: the address's, or
    with `path=WEBHOOK_MANAGE_PATH` (and a `Purpose.webhook_manage` token) a webhook's."""
    return base_url.rstrip("/") + manage_target(token, path=path)


def unsubscribe_all_url(manage_link: str) -> str:
    """The one-click "unsubscribe from every player" of a manage link (a digest's
    List-Unsubscribe): the manage page's form target, same token."""
    path, _, query = manage_link.partition("?")
    return f"{path}/unsubscribe-all?{query}"


# What no link we write may carry: it could end the link early inside HTML, a mail header
# or chat markup (whitespace, quotes, angle brackets, backslash, control characters).
UNSAFE_URL_CHARS = re.compile(r"[\s<>\"'`\\\x00-\x1f\x7f-\x9f]")


def plain_http_url(value: str | None, unsafe: re.Pattern[str] = UNSAFE_URL_CHARS) -> str | None:
    """``value`` if it is a plain absolute http(s) URL free of ``unsafe`` characters, else
    ``None`` (no link). Emails, webhook bodies and pages check links with this one test."""
    if not value or unsafe.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.hostname else None
