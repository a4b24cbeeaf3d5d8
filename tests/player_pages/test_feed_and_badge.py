"""A player's feed and badge (SPEC §12, issue 21 items 3-5), against the real worker's events.

The feed is read with feedparser, a real feed parser: one entry per session, stable ids,
links to the games; `ETag` + `Last-Modified`, and 304 to either. The badge says live
after a game and offline once the worker has seen the session end, with its cache
headers and 304. An unknown key is a 404 for both.
"""

from __future__ import annotations

from datetime import UTC, datetime

import feedparser
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from app.db import create_session_factory
from app.models import NotificationType
from app.notifications.outbox import record_event
from app.notifications.payloads import GameRecord, live_session
from tests.player_pages.conftest import HOUR, NOW, Site

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_badge_says_live_after_a_game_and_offline_later(site: Site) -> None:
    await site.track("hikaru")
    r = await site.client.get("/p/hikaru/badge.svg")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml; charset=utf-8"
    assert r.headers["cache-control"] == "max-age=60"
    assert "<title>hikaru: offline</title>" in r.text and ">offline</text>" in r.text
    offline_tag = r.headers["etag"]

    site.sim.add_game("hikaru", end_time=NOW - 120, time_control="180+2")
    await site.poll()
    r = await site.client.get("/p/hikaru/badge.svg", headers={"If-None-Match": offline_tag})
    assert r.status_code == 200, "the state changed: the old ETag must not match"
    assert "<title>hikaru: live</title>" in r.text and ">live</text>" in r.text
    assert r.text.startswith("<svg") and 'role="img"' in r.text
    live_tag = r.headers["etag"]
    assert live_tag != offline_tag

    again = await site.client.get("/p/HiKaRu/badge.svg", headers={"If-None-Match": live_tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == live_tag and again.headers["cache-control"] == "max-age=60"
    listed = await site.client.get(
        "/p/hikaru/badge.svg", headers={"If-None-Match": f'"other", W/{live_tag}'}
    )
    assert listed.status_code == 304, "a list, and a weak validator, match too"

    # The session ends: the worker's next poll after the gap clears is_playing.
    await site.sql("UPDATE players SET is_playing = false WHERE username = 'hikaru'")
    r = await site.client.get("/p/hikaru/badge.svg", headers={"If-None-Match": live_tag})
    assert r.status_code == 200 and "<title>hikaru: offline</title>" in r.text
    assert r.headers["etag"] == offline_tag


async def test_feed_has_one_entry_per_session_with_stable_ids(site: Site) -> None:
    await site.track("hikaru")
    empty = await site.client.get("/p/hikaru/feed.atom")
    assert empty.status_code == 200
    assert empty.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(empty.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10" and parsed.entries == []

    site.sim.add_game("hikaru", end_time=NOW - 3 * HOUR, uuid="game-one", opponent="magnus")
    site.sim.add_game("hikaru", end_time=NOW - 3 * HOUR + 500, opponent="fabiano")
    site.sim.add_game("hikaru", end_time=NOW - 200, uuid="game-three", opponent="anish")
    await site.poll()

    r = await site.client.get("/p/hikaru/feed.atom")
    assert r.status_code == 200
    feed = feedparser.parse(r.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert "hikaru" in feed.feed.title and "Hikaru Nakamura" in feed.feed.title
    assert feed.feed.id.startswith("urn:uuid:")
    assert [link.rel for link in feed.feed.links] == ["self", "alternate"]
    assert feed.feed.links[0].href.endswith("/p/hikaru/feed.atom")
    assert len(feed.entries) == 2, "one entry per session"
    newest, older = feed.entries
    assert newest.title == "hikaru started playing live chess"
    assert newest.published_parsed > older.published_parsed
    assert "anish" in newest.content[0].value and "magnus" in older.content[0].value
    assert "2 live games (blitz)" in older.summary
    assert older.link.startswith("https://www.chess.com/game/live/")
    assert len({newest.id, older.id}) == 2 and all(
        e.id.startswith("urn:uuid:") for e in feed.entries
    )

    # 304 to the ETag, and (without one) to If-Modified-Since; nothing rendered.
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert r.headers["cache-control"] == "max-age=60"
    same = await site.client.get("/p/hikaru/feed.atom", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == etag and same.headers["last-modified"] == modified
    since = await site.client.get("/p/hikaru/feed.atom", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    stale = await site.client.get(
        "/p/hikaru/feed.atom",
        headers={"If-None-Match": '"something-else"', "If-Modified-Since": modified},
    )
    assert stale.status_code == 200, "If-None-Match decides when both are sent"

    # A new session: a new ETag, a new entry on top, the old entries keep their ids.
    site.sim.add_game("hikaru", end_time=NOW + 3 * HOUR, uuid="game-four")
    await site.poll()
    r = await site.client.get("/p/hikaru/feed.atom", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag
    later = feedparser.parse(r.content)
    assert [e.id for e in later.entries[1:]] == [newest.id, older.id]


async def test_the_feed_keeps_the_last_fifty(site: Site) -> None:
    await site.track("hikaru")
    # 55 sessions, an hour apart, recorded as the worker records them (the worker reads
    # one or two monthly archives, so it is not asked to find a whole season at once).
    async with create_session_factory(site.engine)() as session, session.begin():
        player_id = await session.scalar(text("SELECT player_id FROM players"))
        for i in range(55):
            start = NOW - (60 - i) * HOUR
            game = GameRecord(
                f"g{i}", f"https://www.chess.com/game/live/{i}", start + 300, start, "blitz"
            )
            await record_event(
                session,
                NotificationType.live_match,
                game.event_id,
                live_session("hikaru", None, start, [game]),
                player_id=player_id,
                occurred_at=datetime.fromtimestamp(start, UTC),
            )
    feed = feedparser.parse((await site.client.get("/p/hikaru/feed.atom")).content)
    assert len(feed.entries) == 50
    assert feed.entries[0].link == "https://www.chess.com/game/live/54"
    assert feed.entries[-1].link == "https://www.chess.com/game/live/5"


@pytest.mark.parametrize("path", ["/p/{}/feed.atom", "/p/{}/badge.svg"])
@pytest.mark.parametrize("key", ["nobody", "lichess:nobody", "a", "fan@example.com", "x" * 300])
async def test_an_unknown_key_is_a_404(site: Site, path: str, key: str) -> None:
    r = await site.client.get(path.format(key))
    assert r.status_code == 404
    assert r.json() == {"detail": "No tracked player has this key"}
    assert "@" not in r.text


async def test_streams_are_entries_of_their_own(site: Site) -> None:
    await site.track("hikaru")
    site.sim.add_game("hikaru", end_time=NOW - 2 * HOUR, uuid="before-the-stream")
    await site.poll()
    # A stream as the streamer-list source records it (kind stream_started, SPEC §10).
    await site.sql(
        "INSERT INTO events (kind, player_id, key, payload, occurred_at) "
        "SELECT 'stream_started', player_id, 'stream:chesscom:hikaru:2026', "
        "CAST(:payload AS jsonb), now() - interval '1 hour' FROM players",
        payload='{"username": "hikaru", "stream": {"type": "twitch", '
        '"url": "https://twitch.tv/gmhikaru"}}',
    )
    feed = feedparser.parse((await site.client.get("/p/hikaru/feed.atom")).content)
    assert [e.title for e in feed.entries] == [
        "hikaru started streaming",
        "hikaru started playing live chess",
    ]
    assert feed.entries[0].link == "https://twitch.tv/gmhikaru"
    assert feed.entries[0].summary == "Started streaming on twitch."
    page = (await site.client.get("/p/hikaru")).text
    assert 'href="https://twitch.tv/gmhikaru"' in page and "1 stream" in page


async def test_the_routes_behind_the_fast_path_answer_alike(site: Site, app: FastAPI) -> None:
    """PlayerFeeds answers ahead of the stack; the routes (what it does not take) call the
    same functions: same status, headers and body, 200 and 304."""

    # FastAPI's own stack (error handlers, the router), without the fast layers.
    stack = FastAPI.build_middleware_stack(app)

    async def routes_only(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        await stack(scope, receive, send)

    await site.track("hikaru")
    site.sim.add_game("hikaru", end_time=NOW - 100)
    await site.poll()
    transport = httpx.ASGITransport(app=routes_only)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as routes:
        for path in ("/p/hikaru/badge.svg", "/p/hikaru/feed.atom"):
            fast = await site.client.get(path)
            slow = await routes.get(path)
            assert (slow.status_code, slow.content) == (200, fast.content)
            for header in ("etag", "cache-control", "content-type", "last-modified"):
                assert slow.headers.get(header) == fast.headers.get(header), header
            again = await routes.get(path, headers={"If-None-Match": fast.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
