"""`/p/{key}/feed.atom`: an Atom 1.0 feed of a player's last 50 sessions and streams.

A template (Jinja2, autoescaped as XML) rather than a generator library: the document
is small and fixed, and the feed is hot (feed readers poll it). A conditional request is
answered from one read of the feed's summary (app.player_pages.queries.feed_head),
before its entries are read or anything is rendered.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.db import ReadPool
from app.errors import NotFound
from app.player_pages import queries
from app.player_pages.badge import UNKNOWN
from app.player_pages.conditional import Answer, http_date, is_fresh
from app.player_pages.timeline import entry_id, timeline
from app.players.keys import PlayerKey

MAX_AGE = 60
_VERSION = "f1"
_ATOM = (b"content-type", b"application/atom+xml; charset=utf-8")
_COMMON = [(b"cache-control", b"max-age=%d" % MAX_AGE), (b"x-content-type-options", b"nosniff")]


def atom_date(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["atom", "html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["atom_date"] = atom_date
    return env


def page_path(key: PlayerKey) -> str:
    return f"/p/{key}"


def _etag(head: dict[str, Any]) -> str:
    names = f"{head['username']}|{head['name'] or ''}|{head['title'] or ''}"
    return (
        f'"{_VERSION}-{head["player_id"]}-{head["newest"] or 0}-{head["n"]}-{head["ids"] or 0}'
        f'-{zlib.crc32(names.encode()):x}"'
    )


def _last_modified(head: dict[str, Any]) -> datetime:
    tracked = head["tracked_since"]
    changed = head["changed_at"]
    assert isinstance(tracked, datetime)
    return max(tracked, changed) if isinstance(changed, datetime) else tracked


async def feed(
    pool: ReadPool,
    raw_key: str,
    headers: Iterable[tuple[bytes, bytes]],
    base_url: str,
    drawn: FeedBodies,
) -> Answer:
    """The feed of the player `raw_key` names: 200, or 304 to a matching `If-None-Match`
    (or, without one, `If-Modified-Since`); NotFound for a key that is no tracked player's."""
    key = queries.key_of(raw_key)
    head = await queries.feed_head(pool, key) if key else None
    if key is None or head is None:
        raise NotFound(UNKNOWN)
    etag, modified = _etag(head), _last_modified(head)
    meta = [(b"etag", etag.encode()), (b"last-modified", http_date(modified).encode()), *_COMMON]
    if is_fresh(headers, etag, modified):
        return Answer(304, meta)
    body = drawn.get((etag, base_url))
    if body is None:
        rows = await queries.feed_entries(pool, head["player_id"])
        body = _render(key, head, modified, rows, base_url)
        drawn.put((etag, base_url), body)
    return Answer(200, [_ATOM, (b"content-length", b"%d" % len(body)), *meta], body)


class FeedBodies:
    """Feeds drawn lately, by ETag. A feed changes when its player plays and is read by
    every reader in between, so it is drawn once per change, not once per reader. The
    ETag names the feed's whole content (its entries never change once written).
    Bounded (the least recently used go first); one per app, built with it, so two apps
    on two databases never share one."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._bodies: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def get(self, key: tuple[str, str]) -> bytes | None:
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
        return body

    def put(self, key: tuple[str, str], body: bytes) -> None:
        self._bodies[key] = body
        if len(self._bodies) > self._size:
            self._bodies.popitem(last=False)


def _render(
    key: PlayerKey,
    head: dict[str, Any],
    modified: datetime,
    rows: list[dict[str, Any]],
    base_url: str,
) -> bytes:
    base = base_url.rstrip("/")
    name = head["name"]
    title = f"{key} ({name})" if name else str(key)
    return (
        _env()
        .get_template("feed.atom")
        .render(
            feed_id=entry_id(str(key), "feed", ""),
            title=f"{title}: live chess and streams",
            key=str(key),
            updated=atom_date(modified),
            self_url=f"{base}{page_path(key)}/feed.atom",
            page_url=f"{base}{page_path(key)}",
            entries=timeline(key, rows),
        )
        .encode()
    )
