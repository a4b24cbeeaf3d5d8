"""The player page and the home page (SPEC §12, issue 21 items 1, 2, 6).

Server-rendered HTML read as a visitor would: the player named with their state, the
sessions of the last 30 days with links, the hour-by-weekday picture with its words,
the subscriber count and the ways to subscribe; home lists who is live and the most
followed, and its search box leads to a page or offers to track. An unknown key is a
404 page; no key a fuzzer makes is a 5xx; no address is ever shown.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.player_pages.conftest import HOUR, NOW, Site

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_a_players_page(site: Site) -> None:
    await site.track("hikaru")
    site.sim.add_game("hikaru", end_time=NOW - 5 * HOUR, uuid="old", opponent="magnus")
    site.sim.add_game("hikaru", end_time=NOW - 100, uuid="new", opponent="anish")
    await site.poll()
    # A confirmed subscriber: counted, never shown.
    r = await site.client.post(
        "/api/v1/subscriptions", json={"email": "fan@example.com", "username": "hikaru"}
    )
    assert r.status_code in (201, 202)
    await site.sql("UPDATE email_subscriptions SET confirmed_at = now()")

    page = await site.client.get("/p/hikaru")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert re.search(r"<h1[^>]*>.*GM.*hikaru</h1>", html)
    assert "Hikaru Nakamura" in html and "Chess.com" in html
    assert 'id="state">Playing now<' in html
    assert 'href="https://www.chess.com/member/Hikaru"' in html
    assert "1 person is told here when hikaru plays" in html
    # The last 30 days: two sessions, each game linked, newest first.
    recent = html[html.index('id="recent"') :]
    assert recent.index("anish") < recent.index("magnus")
    assert "2 sessions of live chess" in html
    assert html.count('href="https://www.chess.com/game/live/') >= 2
    # The picture: an SVG with a title and a description, and the same in words.
    assert re.search(r'<svg viewBox="[^"]+" width="100%" role="img"', html)
    assert 'aria-labelledby="pattern-title pattern-desc"' in html
    assert "2 games in the last 90 days. Most often:" in html
    assert html.count("<circle") == len(re.findall(r"<circle[^>]*><title>", html)) >= 1
    # Every way to subscribe, and the feed and badge.
    assert 'action="/subscribe"' in html and 'action="/subscribe-webhook"' in html
    assert "/p/hikaru/feed.atom" in html and "/p/hikaru/badge.svg" in html
    assert "<title>hikaru: live</title>" in html, "the badge, inline"
    assert "fan@example.com" not in html and "@example" not in html
    # No external assets: the one script is our own Web Push button (SPEC §12), inline none.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/push.js" defer>']
    assert re.findall(r'src="([^"]*)"', html) == ["/push.js"], "nothing loaded from elsewhere"


async def test_an_offline_player_shows_when_they_were_last_seen(site: Site) -> None:
    site.sim.add_game("firouzja2003", end_time=NOW - 40 * 24 * HOUR)
    await site.track("firouzja2003")
    html = (await site.client.get("/p/firouzja2003")).text
    assert 'id="state">Not playing now<' in html
    assert "Last online" in html or "Last played live" in html
    assert "No sessions or streams seen in the last 30 days." in html
    assert "No live games in the last 90 days." in html


async def test_the_page_has_one_address_per_player(site: Site) -> None:
    await site.track("hikaru")
    r = await site.client.get("/p/HiKaRu")
    assert r.status_code == 301 and r.headers["location"] == "/p/hikaru"


@pytest.mark.parametrize("key", ["nobody", "lichess:nobody", "a", "fan@example.com", "a b"])
async def test_an_unknown_key_is_a_404_page(site: Site, key: str) -> None:
    r = await site.client.get("/p/" + quote(key, safe=":"))
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "We do not track this player" in r.text
    assert "example.com" not in r.text, "the key typed is not shown back"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.text(min_size=1, max_size=120))
async def test_no_key_a_fuzzer_makes_is_a_server_error(site: Site, key: str) -> None:
    if not site.tracked:  # the fixture is shared by the examples
        await site.track("hikaru")
    quoted = quote(key, safe="")
    for path in (f"/p/{quoted}", f"/p/{quoted}/feed.atom", f"/p/{quoted}/badge.svg"):
        r = await site.client.get(path)
        assert r.status_code < 500, (path, r.status_code, r.text[:200])
        # 307: Starlette's redirect of a path with a trailing slash.
        assert r.status_code in (200, 301, 307, 404), (path, r.status_code)


async def test_home_lists_who_is_live_and_the_most_followed(site: Site) -> None:
    await site.track("hikaru")
    await site.track("firouzja2003")
    html = (await site.client.get("/")).text
    assert "None of the players we track is playing or streaming right now." in html
    top = html[html.index('id="top"') :]
    assert top.index("/p/hikaru") < top.index("/p/firouzja2003"), "most followed first"

    site.sim.add_game("hikaru", end_time=NOW - 60)
    await site.poll()
    html = (await site.client.get("/")).text
    live = html[html.index('id="live"') : html.index('id="find-heading"')]
    assert 'href="/p/hikaru"' in live and "playing now" in live
    assert "firouzja2003" not in live
    # The search box, then the subscribe forms.
    assert html.index('action="/find"') < html.index('action="/subscribe"')


async def test_search_opens_a_page_or_offers_to_track(site: Site) -> None:
    await site.track("hikaru")
    token = await site.form_token()
    found = await site.client.post("/find", data={"csrf_token": token, "key": " HiKaRu "})
    assert found.status_code == 303 and found.headers["location"] == "/p/hikaru"

    offer = await site.client.post("/find", data={"csrf_token": token, "key": "Firouzja2003"})
    assert offer.status_code == 200 and "We do not track firouzja2003 yet" in offer.text
    assert "Alireza Firouzja" in offer.text and 'action="/track"' in offer.text
    assert (await site.client.get("/p/firouzja2003")).status_code == 404, "nothing stored yet"
    tracked = await site.client.post("/track", data={"csrf_token": token, "key": "firouzja2003"})
    assert tracked.status_code == 303 and tracked.headers["location"] == "/p/firouzja2003"
    assert (await site.client.get("/p/firouzja2003")).status_code == 200

    unknown = await site.client.post("/find", data={"csrf_token": token, "key": "nosuchplayer"})
    assert unknown.status_code == 404 and "Chess.com has no player named" in unknown.text
    bad = await site.client.post("/find", data={"csrf_token": token, "key": "fan@example.com"})
    assert bad.status_code == 422 and "@example.com" not in bad.text
    forged = await site.client.post("/find", data={"csrf_token": "forged", "key": "hikaru"})
    assert forged.status_code == 403, "the search form is CSRF-protected like the others"


async def test_a_lichess_player_found_tracked_and_watched(site: Site) -> None:
    token = await site.form_token()
    offer = await site.client.post(
        "/find", data={"csrf_token": token, "key": "lichess:DrNykterstein"}
    )
    assert offer.status_code == 200 and "We do not track lichess:drnykterstein yet" in offer.text
    assert "profile on Lichess" in offer.text
    tracked = await site.client.post(
        "/track", data={"csrf_token": token, "key": "lichess:drnykterstein"}
    )
    assert tracked.headers["location"] == "/p/lichess:drnykterstein"
    await site.poll()  # the first status read is a baseline

    game = site.lichess.start_game("drnykterstein", "3+0")
    await site.poll()
    page = (await site.client.get("/p/lichess:drnykterstein")).text
    assert 'id="state">Playing now<' in page
    assert f'href="https://lichess.org/{game}"' in page and "Watch on Lichess" in page
    badge = await site.client.get("/p/LICHESS:DrNykterstein/badge.svg")
    assert "<title>lichess:drnykterstein: live</title>" in badge.text
    feed = feedparser.parse((await site.client.get("/p/lichess:drnykterstein/feed.atom")).content)
    assert [e.link for e in feed.entries] == [f"https://lichess.org/{game}"]

    site.lichess.end_game("drnykterstein")
    site.lichess.start_stream("drnykterstein")
    await site.sql("UPDATE players SET is_playing = false WHERE platform = 'lichess'")
    await site.poll()
    badge = await site.client.get("/p/lichess:drnykterstein/badge.svg")
    assert "<title>lichess:drnykterstein: streaming</title>" in badge.text
    home = (await site.client.get("/")).text
    live = home[home.index('id="live"') : home.index('id="find-heading"')]
    assert 'href="/p/lichess:drnykterstein"' in live and "streaming now" in live

    unknown = await site.client.post("/find", data={"csrf_token": token, "key": "lichess:nobody"})
    assert unknown.status_code == 404 and "Lichess has no player named" in unknown.text
