"""`/p/{key}/badge.svg`: "live" / "streaming" / "offline" with the player's name (SPEC §12).

For stream overlays and READMEs, so it is fetched by every viewer: one indexed read of the
player's two flags, an `ETag` made of exactly what the picture shows (so a conditional
request is answered without drawing anything), and a picture that is a string format.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from html import escape

from app.db import ReadPool
from app.errors import NotFound
from app.player_pages import queries
from app.player_pages.conditional import Answer, is_fresh

MAX_AGE = 60
# What an unknown key is told. The key is not echoed: a page must never show an address,
# not even one typed into its URL.
UNKNOWN = "No tracked player has this key"

# Bump when the picture changes, so caches holding the old one fetch the new one.
_VERSION = "b1"

# State → (words, background). Each background carries white text at 4.5:1 or better,
# and the state is written out: colour is never the only sign.
STATES = {
    "live": ("live", "#1b6e1b"),
    "streaming": ("streaming", "#6233a8"),
    "offline": ("offline", "#595959"),
}
_LABEL_BG = "#333333"
_CHAR_PX = 7.0  # a generous average advance of 11 px Verdana/DejaVu Sans
_PAD = 12


def state_of(is_playing: bool, is_streaming: bool) -> str:
    """A session in progress wins over a stream (SPEC §12)."""
    if is_playing:
        return "live"
    return "streaming" if is_streaming else "offline"


def _width(text: str) -> int:
    return int(len(text) * _CHAR_PX + 2 * _PAD)


@lru_cache(maxsize=4096)
def render(name: str, state: str) -> bytes:
    """The badge's SVG: a dark label with the name, a coloured value with the state."""
    words, colour = STATES[state]
    label_w, value_w = _width(name), _width(words)
    total = label_w + value_w
    title = escape(f"{name}: {words}")
    name_x, value_x = label_w / 2, label_w + value_w / 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" '
        f'viewBox="0 0 {total} 20" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<rect width="{label_w}" height="20" rx="3" fill="{_LABEL_BG}"/>'
        f'<rect x="{label_w}" width="{value_w}" height="20" rx="3" fill="{colour}"/>'
        f'<rect x="{label_w}" width="4" height="20" fill="{colour}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,Geneva,sans-serif" font-size="11" '
        'text-anchor="middle">'
        f'<text x="{name_x:g}" y="14">{escape(name)}</text>'
        f'<text x="{value_x:g}" y="14" font-weight="bold">{escape(words)}</text>'
        "</g></svg>"
    ).encode()


_COMMON = [
    (b"cache-control", b"max-age=%d" % MAX_AGE),
    (b"x-content-type-options", b"nosniff"),
    # An SVG opened on its own is a document: it may run nothing and load nothing.
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'"),
]
_SVG = (b"content-type", b"image/svg+xml; charset=utf-8")


async def badge(pool: ReadPool, raw_key: str, headers: Iterable[tuple[bytes, bytes]]) -> Answer:
    """The badge of the player `raw_key` names: 200, or 304 to a matching `If-None-Match`;
    NotFound for a key that is no tracked player's."""
    key = queries.key_of(raw_key)
    row = await queries.badge_state(pool, key) if key else None
    if key is None or row is None:
        raise NotFound(UNKNOWN)
    state = state_of(row["is_playing"], row["is_streaming"])
    etag = f'"{_VERSION}-{state}-{key}"'
    head = [(b"etag", etag.encode()), *_COMMON]
    if is_fresh(headers, etag):
        return Answer(304, head)
    body = render(str(key), state)
    return Answer(200, [_SVG, (b"content-length", b"%d" % len(body)), *head], body)
