"""Subscription, confirmation, unsubscribe and erasure routes (SPEC §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.deps import ChessComDep, SessionDep, SettingsDep, SignerDep
from app.errors import InvalidToken, NotFound, Unprocessable
from app.http_errors import error_responses, page_error_responses
from app.net import client_ip
from app.pages.render import render_page, wants_json
from app.players import service as players
from app.schemas import UsernamePath, canonical_email
from app.security import AdminDep
from app.subscriptions import service
from app.subscriptions.schemas import (
    Accepted,
    ConfirmResult,
    EraseRequest,
    SubscribeRequest,
    SubscriptionOut,
    SubscriptionStatus,
    UnsubscribeResult,
)
from app.subscriptions.tokens import Purpose, TokenSigner
from app.urls import CONFIRM_ROUTE, ERASE_ROUTE, UNSUBSCRIBE_ROUTE, link_target

router = APIRouter(tags=["subscriptions"])

TokenQuery = Annotated[str, Query(max_length=1000, description="The signed token from the email")]
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]

_HTML_OR_JSON = {
    "content": {"text/html": {}, "application/json": {}},
    "description": "An HTML page for browsers; JSON when `Accept: application/json`",
}


# Link pages: a page for browsers; errors the page itself cannot explain (a link cut
# short, an outage) as a page too, or JSON for API clients.
_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}},
    400: {"content": {"text/html": {}}},
    **page_error_responses(422, 503),
}
_PAGE_ACTION: dict[int | str, dict[str, Any]] = {
    200: _HTML_OR_JSON,
    400: _HTML_OR_JSON,
    **page_error_responses(422, 429, 503),
}


def _invalid_page(exc: InvalidToken) -> HTMLResponse:
    return render_page(
        "error.html",
        400,
        heading="This link does not work",
        message=exc.detail,
        hint="Links in our emails expire. If you still want to change your subscription, "
        "ask again from the service, or use the newest email you received.",
    )


def _refused(exc: InvalidToken, accept: str | None) -> Response:
    """A bad link: JSON error for API clients, an explanatory page for browsers."""
    if wants_json(accept):
        raise exc
    return _invalid_page(exc)


def _done(accept: str | None, result: BaseModel, heading: str, message: str) -> Response:
    if wants_json(accept):
        return JSONResponse(result.model_dump())
    return render_page("done.html", heading=heading, message=message)


async def _button_page(
    session: AsyncSession,
    settings: Settings,
    signer: TokenSigner,
    purpose: Purpose,
    token: str,
    template: str,
) -> HTMLResponse:
    """The page a link opens: checks the token, changes nothing, offers a POST button."""
    try:
        sub = await service.check_token(session, settings, signer, purpose, token)
    except InvalidToken as exc:
        return _invalid_page(exc)
    username = await service.username_of(session, sub.player_id)
    return render_page(template, username=username, action=link_target(purpose, token))


@router.post(
    "/subscriptions",
    response_model=SubscriptionStatus,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Subscribe an email address to a player",
    description="Tracks the player if needed and sends a confirmation email (double opt-in). "
    "The answer is the same whether or not the address was already subscribed.",
    responses={
        **error_responses(404, 422, 429, 503),
        201: {"model": SubscriptionStatus, "description": "Active (confirmation off)"},
    },
)
async def subscribe(
    body: SubscribeRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    chesscom: ChessComDep,
) -> SubscriptionStatus:
    player, _ = await players.track_player(session, chesscom, body.username)
    result = await service.subscribe(session, settings, email=body.email, player=player)
    if result == "active":
        response.status_code = status.HTTP_201_CREATED
    return SubscriptionStatus.model_validate({"status": result})


@router.get(
    CONFIRM_ROUTE,
    response_class=HTMLResponse,
    summary="Confirmation page (changes nothing; the button POSTs)",
    responses=_PAGE,
)
async def confirm_page(
    token: TokenQuery, session: SessionDep, settings: SettingsDep, signer: SignerDep
) -> HTMLResponse:
    return await _button_page(session, settings, signer, Purpose.confirm, token, "confirm.html")


@router.post(
    CONFIRM_ROUTE,
    summary="Confirm a subscription",
    response_model=ConfirmResult,
    responses=_PAGE_ACTION,
)
async def confirm(
    request: Request,
    token: TokenQuery,
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    accept: AcceptHeader = None,
) -> Response:
    consent = service.Consent(ip=client_ip(request), user_agent=request.headers.get("user-agent"))
    try:
        sub = await service.confirm(session, settings, signer, token, consent)
    except InvalidToken as exc:
        return _refused(exc, accept)
    username = await service.username_of(session, sub.player_id)
    return _done(
        accept,
        ConfirmResult(username=username),
        "Subscription confirmed",
        f"You will get an email when {username} starts playing live chess.",
    )


@router.get(
    UNSUBSCRIBE_ROUTE,
    response_class=HTMLResponse,
    summary="Unsubscribe page (changes nothing; the button POSTs)",
    responses=_PAGE,
)
async def unsubscribe_page(
    token: TokenQuery, session: SessionDep, settings: SettingsDep, signer: SignerDep
) -> HTMLResponse:
    return await _button_page(
        session, settings, signer, Purpose.unsubscribe, token, "unsubscribe.html"
    )


@router.post(
    UNSUBSCRIBE_ROUTE,
    summary="Unsubscribe (also RFC 8058 one-click)",
    description="Accepts an empty body, a form post, or `List-Unsubscribe=One-Click`. Idempotent.",
    response_model=UnsubscribeResult,
    responses=_PAGE_ACTION,
)
async def unsubscribe(
    token: TokenQuery,
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    accept: AcceptHeader = None,
) -> Response:
    try:
        sub = await service.unsubscribe(session, settings, signer, token)
    except InvalidToken as exc:
        return _refused(exc, accept)
    username = await service.username_of(session, sub.player_id)
    return _done(
        accept,
        UnsubscribeResult(username=username),
        "You are unsubscribed",
        f"You will get no more emails about {username}.",
    )


@router.get(
    "/players/{username}/subscriptions",
    response_model=list[SubscriptionOut],
    summary="List a player's subscriptions, with addresses (admin)",
    tags=["admin"],
    responses=error_responses(401, 404, 422),
)
async def player_subscriptions(
    username: UsernamePath, session: SessionDep, _admin: AdminDep
) -> list[SubscriptionOut]:
    player = await players.find_player(session, username)
    if player is None:
        raise NotFound(f"Player '{username.lower()}' is not tracked")
    subs = await service.list_for_player(session, player.player_id)
    return [
        SubscriptionOut.model_validate({**_columns(s), "username": player.username}) for s in subs
    ]


def _columns(sub: object) -> dict[str, object]:
    return {k: getattr(sub, k) for k in SubscriptionOut.model_fields if k != "username"}


@router.delete(
    "/subscribers/{email}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase every row about an address (admin)",
    tags=["admin"],
    responses=error_responses(401, 422, 429),
)
async def erase_subscriber(email: str, session: SessionDep, _admin: AdminDep) -> Response:
    await service.erase_address(session, _valid_email(email))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/subscribers/erase-request",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask for every row about an address to be deleted",
    description="Emails a signed link to the address; following it deletes its "
    "subscriptions and notification logs. The answer never says whether the address "
    "was known.",
    responses=error_responses(422, 429),
)
async def erase_request(body: EraseRequest, session: SessionDep, settings: SettingsDep) -> Accepted:
    await service.request_erasure(session, settings, body.email)
    return Accepted(detail="If we hold data about this address, we sent it a link.")


@router.get(
    ERASE_ROUTE,
    response_class=HTMLResponse,
    summary="Erase page (changes nothing; the button POSTs)",
    responses=_PAGE,
)
async def erase_page(
    token: TokenQuery, session: SessionDep, settings: SettingsDep, signer: SignerDep
) -> HTMLResponse:
    try:
        await service.email_for_erase_token(session, settings, signer, token)
    except InvalidToken as exc:
        return _invalid_page(exc)
    return render_page("erase.html", action=link_target(Purpose.erase, token))


@router.post(
    ERASE_ROUTE,
    summary="Erase every row about the address of an erase link",
    response_model=Accepted,
    responses=_PAGE_ACTION,
)
async def erase(
    token: TokenQuery,
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    accept: AcceptHeader = None,
) -> Response:
    try:
        email = await service.email_for_erase_token(session, settings, signer, token)
    except InvalidToken as exc:
        return _refused(exc, accept)
    if email is not None:
        await service.erase_address(session, email)
    return _done(
        accept,
        Accepted(detail="Your data has been deleted."),
        "Your data has been deleted",
        "We no longer hold any subscription or notification record for your address.",
    )


def _valid_email(value: str) -> str:
    try:
        return canonical_email(value)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from exc
