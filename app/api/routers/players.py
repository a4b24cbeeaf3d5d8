"""Player routes (SPEC §4): parse, call the service, answer.

Route declarations share one shape on purpose: each spells out its own OpenAPI contract.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.api.deps import PlatformsDep, ReadPoolDep, SessionDep
from app.api.errors import error_responses
from app.api.params import Limit, Offset, UsernamePath
from app.api.security import AdminDep
from app.players import service
from app.players.schemas import PlayerOut, RefreshAccepted, TrackPlayerRequest
from app.schemas import Page

router = APIRouter(prefix="/players", tags=["players"])


# The player's routes take its key (`lichess:<name>` for Lichess), not the bare username:
# said as OpenAPI links so clients and stateful fuzzers follow the right field.
_PLAYER_LINKS = {
    name: {"operationId": op, "parameters": {"username": "$response.body#/key"}}
    for name, op in (
        ("GetPlayer", "players-get"),
        ("RefreshPlayer", "players-refresh"),
        ("UntrackPlayer", "players-delete"),
        ("PlayerSubscriptions", "players-subscriptions-list"),
    )
}


# Routes declare their whole OpenAPI entry (status, summary, description, errors) where
# they are defined: declarations of that shape repeat across routers by design (the
# duplicate scan pairs them); the behaviour behind each lives in its service.
@router.post(
    "",
    response_model=PlayerOut,
    status_code=status.HTTP_201_CREATED,
    summary="Track a Chess.com or Lichess player",
    description="Fetches the profile from Chess.com (or Lichess, for a `lichess:` key) and "
    "starts tracking the player. 201 when newly tracked, 200 when it already was.",
    responses={
        **error_responses(404, 422, 429, 503),
        201: {"description": "Newly tracked", "links": _PLAYER_LINKS},
        200: {"model": PlayerOut, "description": "Already tracked", "links": _PLAYER_LINKS},
    },
)
async def track_player(
    body: TrackPlayerRequest, response: Response, session: SessionDep, platforms: PlatformsDep
) -> PlayerOut:
    player, created = await service.track_player(session, platforms, body.key)
    if not created:
        response.status_code = status.HTTP_200_OK
    return PlayerOut.model_validate(player)


@router.get("", response_model=Page[PlayerOut], summary="List tracked players")
async def list_players(
    session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[PlayerOut]:
    players, total = await service.list_players(session, limit=limit, offset=offset)
    return Page[PlayerOut](
        items=[PlayerOut.model_validate(p) for p in players],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/refresh",
    response_model=RefreshAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Refresh every tracked profile in the background (admin)",
    responses=error_responses(401, 429),
)
async def refresh_all(
    request: Request, session: SessionDep, platforms: PlatformsDep, _admin: AdminDep
) -> RefreshAccepted:
    count = len(await service.all_usernames(session))
    state = request.app.state
    state.refresh_all_task = service.start_refresh_all(
        getattr(state, "refresh_all_task", None),
        state.session_factory,
        platforms,
        keep=state.background_tasks,
    )
    return RefreshAccepted(status="accepted", players=count)


@router.get(
    "/{username}",
    response_model=PlayerOut,
    summary="Get a tracked player",
    responses=error_responses(404, 422),
)
async def get_player(username: UsernamePath, pool: ReadPoolDep) -> Response:
    # The one implementation, shared with the read ahead of the stack (app/api/fast_read.py).
    return Response(await service.player_json(pool, username), media_type="application/json")


@router.post(
    "/{username}/refresh",
    response_model=PlayerOut,
    summary="Re-fetch a tracked player's profile from its platform",
    responses=error_responses(404, 422, 429, 503),
)
async def refresh_player(
    username: UsernamePath, session: SessionDep, platforms: PlatformsDep
) -> PlayerOut:
    return PlayerOut.model_validate(await service.refresh_player(session, platforms, username))


@router.delete(
    "/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop tracking a player (admin)",
    description="Deletes the player, its subscriptions and their notification logs.",
    responses=error_responses(401, 404, 422, 429),
)
async def untrack_player(username: UsernamePath, session: SessionDep, _admin: AdminDep) -> Response:
    await service.untrack_player(session, username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
