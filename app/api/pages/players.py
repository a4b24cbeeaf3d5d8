"""A page, a feed and a badge for every tracked player, and the home page's search (SPEC §12).

`/p/{key}/badge.svg` and `/p/{key}/feed.atom` are answered ahead of the framework by
`app.api.player_feeds.PlayerFeeds` (they are fetched by every viewer of an overlay or a
README); the routes here call the very same functions and answer what that layer does
not take. Like the other pages, they are not in the OpenAPI document: their bodies
(SVG, Atom) are not the API's JSON, and client generators refuse those content types.
A key that is no tracked player's is a 404 for all three, never a 5xx.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from app.api.deps import PlatformsDep, ReadPoolDep, SessionDep, SettingsDep
from app.api.pages.site import CheckedForm, PlayerCard, _page, _text
from app.api.ratelimit import rate_limit
from app.db import ReadPool
from app.errors import NotFound
from app.models.subscription import DEFAULT_TIME_CLASSES
from app.player_pages import queries
from app.player_pages.badge import badge, render, state_of
from app.player_pages.conditional import Answer
from app.player_pages.feed import feed
from app.player_pages.home import home_lists
from app.player_pages.pattern import pattern
from app.player_pages.timeline import timeline
from app.player_pages.views import PLATFORM_NAMES, entry_views, player_view
from app.players import service as players
from app.players.keys import Platform, PlayerKey
from app.players.platforms import Platforms
from app.urls import FIND_PATH, PLAYER_PATH, TRACK_PATH, player_path

router = APIRouter(dependencies=[Depends(rate_limit)])

KeyPath = Annotated[
    str,
    Path(
        description="A player key: `hikaru` (Chess.com) or `lichess:drnykterstein` (Lichess), "
        "case-insensitive. Anything that is not a tracked player's key is a 404.",
        examples=["hikaru"],
    ),
]

_FIND_HINT = "Enter a player key: a Chess.com username like hikaru, or lichess:name."


def _answer(answer: Answer) -> Response:
    headers = {name.decode(): value.decode() for name, value in answer.headers}
    headers.pop("content-length", None)
    return Response(answer.body, answer.status, headers=headers)


# Badge (live / streaming / offline, `Cache-Control: max-age=60`, ETag, 304) and feed
# (Atom 1.0, ETag + Last-Modified, 304): what PlayerFeeds does not take.
@router.get(PLAYER_PATH + "{key}/badge.svg", include_in_schema=False)
async def player_badge(request: Request, key: KeyPath, pool: ReadPoolDep) -> Response:
    return _answer(await badge(pool, key, request.headers.raw))


@router.get(PLAYER_PATH + "{key}/feed.atom", include_in_schema=False)
async def player_feed(
    request: Request, key: KeyPath, pool: ReadPoolDep, settings: SettingsDep
) -> Response:
    drawn = request.app.state.feed_bodies
    return _answer(await feed(pool, key, request.headers.raw, settings.public_url, drawn))


async def _unknown(request: Request, settings: Any) -> HTMLResponse:
    return _page(request, settings, "player_unknown.html", 404, values={})


@router.get(PLAYER_PATH + "{key}", response_class=HTMLResponse, include_in_schema=False)
async def player_page(
    request: Request, key: str, pool: ReadPoolDep, settings: SettingsDep
) -> HTMLResponse:
    parsed = queries.key_of(key)
    row = await queries.page_player(pool, parsed) if parsed else None
    if parsed is None or row is None:
        return await _unknown(request, settings)
    if str(parsed) != key:  # one address per player: /p/HiKaRu → /p/hikaru
        return RedirectResponse(player_path(parsed), status_code=301)  # type: ignore[return-value]
    player_id = int(row["player_id"])
    state = state_of(bool(row["is_playing"]), bool(row.get("is_streaming")))
    recent = timeline(parsed, await queries.recent_entries(pool, player_id))
    picture = pattern(await queries.play_pattern(pool, player_id))
    base = settings.public_url.rstrip("/")
    return _page(
        request,
        settings,
        "player.html",
        values={},
        player=player_view(parsed, row, state),
        # The badge itself, inline: the page loads nothing but itself.
        badge_svg=Markup(render(str(parsed), state).decode()),
        recent=entry_views(recent),
        sessions=sum(1 for e in recent if e.kind == "session"),
        streams=sum(1 for e in recent if e.kind == "stream"),
        picture=picture,
        page_url=f"{base}{player_path(parsed)}",
        time_classes=list(DEFAULT_TIME_CLASSES),
    )


async def _home_error(
    request: Request, settings: Any, pool: ReadPool, status: int, value: str, error: str
) -> HTMLResponse:
    return _page(
        request,
        settings,
        "home.html",
        status,
        values={"find": value},
        errors={"find": error},
        **await home_lists(pool),
    )


def _not_on(key: PlayerKey) -> str:
    return f"{PLATFORM_NAMES[key.platform]} has no player named “{key.username}”."


async def _look_up(platforms: Platforms, key: PlayerKey) -> PlayerCard:
    """The player as their platform shows them (NotFound when it does not know them):
    what "track this player" shows before anything is stored."""
    if key.platform is Platform.lichess:
        user = await platforms.lichess_profiles().fetch(key.username)
        real_name = user.profile.real_name if user.profile else None
        url = user.url or f"https://lichess.org/@/{key.username}"
        return PlayerCard(str(key), real_name, user.title, url, 0)
    profile = await players.fetch_profile(platforms.chesscom, key.username)
    return PlayerCard(str(key), profile.name, profile.title, profile.url, profile.followers or 0)


@router.post(FIND_PATH, response_class=HTMLResponse, include_in_schema=False)
async def find(
    request: Request,
    pool: ReadPoolDep,
    settings: SettingsDep,
    platforms: PlatformsDep,
    form: CheckedForm,
) -> Response:
    """The search box: a tracked player's key → their page; a player the platform knows
    but we do not track yet → "track this player"; anything else → why not."""
    raw = _text(form, "key", 80)
    key = queries.key_of(raw)
    if key is None:
        # The input is not repeated back: it may be an address typed by mistake.
        return await _home_error(request, settings, pool, 422, "", _FIND_HINT)
    if await queries.page_player(pool, key) is not None:
        return RedirectResponse(player_path(key), status_code=303)
    try:
        card = await _look_up(platforms, key)
    except NotFound:
        return await _home_error(request, settings, pool, 404, str(key), _not_on(key))
    platform = PLATFORM_NAMES[key.platform]
    return _page(request, settings, "track.html", player=card, key=str(key), platform=platform)


@router.post(TRACK_PATH, response_class=HTMLResponse, include_in_schema=False)
async def track(
    request: Request,
    session: SessionDep,
    pool: ReadPoolDep,
    settings: SettingsDep,
    platforms: PlatformsDep,
    form: CheckedForm,
) -> Response:
    """ "Track this player": start tracking, then open their page."""
    key = queries.key_of(_text(form, "key", 80))
    if key is None:
        return await _home_error(request, settings, pool, 422, "", _FIND_HINT)
    try:
        await players.track_player(session, platforms, key.key)
    except NotFound:
        return await _home_error(request, settings, pool, 404, str(key), _not_on(key))
    return RedirectResponse(player_path(key), status_code=303)
