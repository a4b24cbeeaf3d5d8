"""Conditional GETs (RFC 9110 §13) for the feed and the badge: answered before rendering.

A badge or a feed is fetched again and again by the same readers (an overlay every
minute, a feed reader every few minutes); most of those fetches carry the `ETag` they
got last time, and the answer to them is a bodyless 304 decided from one cheap read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as the fast path sends it: status, raw header pairs, body."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for GET) or is `*`."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def unmodified_since(if_modified_since: str | None, last_modified: datetime) -> bool:
    """`If-Modified-Since` is at or after `last_modified` (to the second); a date that does
    not parse is ignored, as RFC 9110 says."""
    if not if_modified_since or len(if_modified_since) > 64:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= since


def is_fresh(
    headers: Iterable[tuple[bytes, bytes]], etag: str, last_modified: datetime | None = None
) -> bool:
    """The client's copy is current: its `If-None-Match` matches, or (only without one)
    its `If-Modified-Since` is not older than `last_modified`."""
    if_none_match = if_modified_since = None
    for name, value in headers:
        if name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"if-modified-since":
            if_modified_since = value.decode("latin-1")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    return last_modified is not None and unmodified_since(if_modified_since, last_modified)
