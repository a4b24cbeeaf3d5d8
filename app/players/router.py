"""Player routes (SPEC §4): parse, call the service, answer."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.chesscom.client import ChessComClient
from app.deps import ChessComDep, SessionDep
from app.errors import AppError
from app.http_errors import error_responses
from app.players import service
from app.players.schemas import PlayerOut, RefreshAccepted, TrackPlayerRequest
from app.schemas import Limit, Offset, Page, UsernamePath
from app.security import AdminDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/players", tags=["players"])


@router.post(
    "",
    response_model=PlayerOut,
    status_code=status.HTTP_201_CREATED,
    summary="Track a Chess.com player",
    description="Fetches the profile from Chess.com and starts tracking the player. "
    "201 when newly tracked, 200 when it already was.",
    responses={
        **error_responses(404, 422, 429, 503),
        200: {"model": PlayerOut, "description": "Already tracked"},
    },
)
async def track_player(
    body: TrackPlayerRequest, response: Response, session: SessionDep, chesscom: ChessComDep
) -> PlayerOut:
    player, created = await service.track_player(session, chesscom, body.username)
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


async def _refresh_all(factory: async_sessionmaker[AsyncSession], chesscom: ChessComClient) -> None:
    """Refresh every profile, one short transaction each; one failure never stops the rest."""
    async with factory() as session:
        usernames = await service.all_usernames(session)
    for username in usernames:
        try:
            async with factory() as session, session.begin():
                await service.refresh_player(session, chesscom, username)
        except AppError as exc:
            log.warning("refresh of %s failed: %s", username, exc.detail)
        except Exception:
            log.exception("refresh of %s failed", username)


@router.post(
    "/refresh",
    response_model=RefreshAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Refresh every tracked profile in the background (admin)",
    responses=error_responses(401, 429),
)
async def refresh_all(
    request: Request, session: SessionDep, chesscom: ChessComDep, _admin: AdminDep
) -> RefreshAccepted:
    count = len(await service.all_usernames(session))
    state = request.app.state
    running: asyncio.Task[None] | None = getattr(state, "refresh_all_task", None)
    if running is None or running.done():
        # One pass at a time, whoever asks: repeated requests cost Chess.com nothing more.
        task = asyncio.create_task(_refresh_all(state.session_factory, chesscom))
        state.refresh_all_task = task
        # Keep a reference so the task is not garbage-collected mid-run.
        state.background_tasks.add(task)
        task.add_done_callback(state.background_tasks.discard)
    return RefreshAccepted(status="accepted", players=count)


@router.get(
    "/{username}",
    response_model=PlayerOut,
    summary="Get a tracked player",
    responses=error_responses(404, 422),
)
async def get_player(username: UsernamePath, session: SessionDep) -> PlayerOut:
    return PlayerOut.model_validate(await service.get_player(session, username))


@router.post(
    "/{username}/refresh",
    response_model=PlayerOut,
    summary="Re-fetch a tracked player's profile from Chess.com",
    responses=error_responses(404, 422, 429, 503),
)
async def refresh_player(
    username: UsernamePath, session: SessionDep, chesscom: ChessComDep
) -> PlayerOut:
    return PlayerOut.model_validate(await service.refresh_player(session, chesscom, username))


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
