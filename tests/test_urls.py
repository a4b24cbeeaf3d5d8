"""Every link URL is built in one place (app.urls), and the app serves what it builds."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from app.config import Settings
from app.main import create_app
from app.tokens import Purpose, TokenSigner
from app.urls import (
    LINK_PATHS,
    MANAGE_PATH,
    PAGE_PATHS,
    TELEGRAM_MANAGE_PATH,
    WEBHOOK_MANAGE_PATH,
    link_target,
    link_url,
    manage_url,
)


def test_link_urls_carry_the_token_under_the_public_base_url() -> None:
    token = TokenSigner("k" * 32).sign(Purpose.unsubscribe, 7, "a@example.com")
    url = link_url("https://helper.example/", Purpose.unsubscribe, token)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "helper.example",
        "/api/v1/unsubscribe",
    )
    assert parse_qs(parts.query) == {"token": [token]}
    assert url.endswith(link_target(Purpose.unsubscribe, token))


def test_the_manage_link_is_at_the_root() -> None:
    assert (
        manage_url("http://localhost:8000", "abc.def")
        == "http://localhost:8000/manage?token=abc.def"
    )
    assert MANAGE_PATH == "/manage"
    assert (
        manage_url("http://localhost:8000/", "abc.def", path=WEBHOOK_MANAGE_PATH)
        == "http://localhost:8000/manage/webhook?token=abc.def"
    )


def test_every_purpose_has_a_page_and_the_app_serves_it(settings: Settings) -> None:
    # Every purpose but the manage ones opens an email-link page; manage opens
    # MANAGE_PATH, webhook_manage WEBHOOK_MANAGE_PATH, telegram_manage TELEGRAM_MANAGE_PATH
    # (site pages, not API operations); push_manage is the bearer of /push/me (no page:
    # the browser holding it lists its subscriptions on the site's own pages).
    manage = {Purpose.manage, Purpose.webhook_manage, Purpose.telegram_manage, Purpose.push_manage}
    assert set(LINK_PATHS) == set(Purpose) - manage
    assert set(LINK_PATHS.values()) == PAGE_PATHS
    assert TELEGRAM_MANAGE_PATH == MANAGE_PATH + "/telegram"  # tests/telegram/test_manage.py
    paths = create_app(settings).openapi()["paths"]
    assert {"get", "delete"} <= set(paths["/api/v1/push/me"])
    for path in LINK_PATHS.values():
        assert {"get", "post"} <= set(paths[path])
