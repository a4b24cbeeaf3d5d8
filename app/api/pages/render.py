"""Small server-rendered pages (confirm, unsubscribe, erase, errors): Jinja2, autoescaped."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.models.subscription import DEFAULT_TIME_CLASSES, TIME_CLASSES
from app.urls import PAGE_PATHS, is_site_path

# No external assets, no inline script: the pages work with the strictest policy.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


# The pages that offer "Notify this browser" (SPEC §11) run one script of our own,
# /push.js, which registers /sw.js and calls our API: still no inline script, nothing
# from another origin.
PUSH_SCRIPT_CSP = SECURITY_HEADERS["Content-Security-Policy"] + (
    "; script-src 'self'; connect-src 'self'; worker-src 'self'"
)


PUSH_SCRIPT_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": PUSH_SCRIPT_CSP}
# The templates that carry the button (and load /push.js), whatever route renders them.
PUSH_SCRIPT_TEMPLATES = frozenset({"home.html", "player.html"})


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Every form offers every time class, ticked by default as SPEC §4's default is.
    env.globals["all_time_classes"] = TIME_CLASSES
    env.globals["default_time_classes"] = DEFAULT_TIME_CLASSES
    return env


def render_page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _env().get_template(template).render(**context)
    headers = PUSH_SCRIPT_HEADERS if template in PUSH_SCRIPT_TEMPLATES else SECURITY_HEADERS
    return HTMLResponse(html, status_code=status_code, headers=headers)


def wants_json(accept: str | None) -> bool:
    """True when the client prefers JSON to HTML (API clients), false for browsers."""
    if not accept:
        return False
    accept = accept.lower()
    return "application/json" in accept and "text/html" not in accept


def is_page_request(request: Request) -> bool:
    """A browser on one of the pages: its errors are answered with a page, not JSON."""
    path = request.url.path
    is_page = path in PAGE_PATHS or is_site_path(path)
    return is_page and not wants_json(request.headers.get("accept"))


class LinkRefused(Exception):
    """A bad email link opened in a browser: answered with `invalid_link_page` (400)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class PageAnswer(Exception):
    """Raised by a page's dependency that must not let its route run (a manage link
    that does not verify): the handler answers with `response`, as it is."""

    def __init__(self, response: HTMLResponse) -> None:
        self.response = response
        super().__init__(response.status_code)


def invalid_link_page(detail: str) -> HTMLResponse:
    return render_page(
        "error.html",
        400,
        heading="This link does not work",
        message=detail,
        hint="Links in our emails expire. If you still want to change your subscription, "
        "ask again from the service, or use the newest email you received.",
    )
