"""The pages that links in emails open: confirm, unsubscribe, erase (SPEC §4).

GET shows a page with a button and changes nothing (mail scanners follow links); POST acts,
answering a page to browsers and JSON when `Accept: application/json`. Each route gets its
subject from a dependency that verifies the link's token first; a bad link is refused with
an explanatory page (or the JSON error, for an API client's POST).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import SessionDep, SettingsDep, SignerDep
from app.errors import InvalidToken
from app.http_errors import page_error_responses
from app.models import EmailSubscription
from app.net import client_ip
from app.pages.render import LinkRefused, render_page, wants_json
from app.subscriptions import service
from app.subscriptions.schemas import Accepted, ConfirmResult, UnsubscribeResult
from app.subscriptions.tokens import Purpose
from app.urls import CONFIRM_ROUTE, ERASE_ROUTE, UNSUBSCRIBE_ROUTE, link_target

router = APIRouter(tags=["subscriptions"])

TokenQuery = Annotated[
    str,
    Query(
        max_length=1000,
        description="The opaque signed token of the email link, passed on unchanged. "
        "A token that is not one we signed, or that expired, gets 400.",
    ),
]

_HTML_OR_JSON = {
    "content": {"text/html": {}, "application/json": {}},
    "description": "An HTML page for browsers; JSON when `Accept: application/json`",
}
# A page for browsers; errors the page itself cannot explain (a link cut short, an
# outage) as a page too, or JSON for API clients.
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


def _refuse(request: Request, exc: InvalidToken) -> Exception:
    """GET pages always explain with a page; a POST answers JSON to API clients."""
    if request.method == "GET" or not wants_json(request.headers.get("accept")):
        return LinkRefused(exc.detail)
    return InvalidToken(exc.detail)


@dataclass(frozen=True, slots=True)
class SubscriptionLink:
    token: str
    subscription: EmailSubscription


def _subscription_link(purpose: Purpose) -> Any:
    async def verified(
        request: Request,
        token: TokenQuery,
        session: SessionDep,
        settings: SettingsDep,
        signer: SignerDep,
    ) -> SubscriptionLink:
        try:
            sub = await service.check_token(session, settings, signer, purpose, token)
        except InvalidToken as exc:
            raise _refuse(request, exc) from exc
        return SubscriptionLink(token, sub)

    return verified


async def _erase_link(
    request: Request,
    token: TokenQuery,
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
) -> str | None:
    """The address an erase link is for; None when its rows are gone already."""
    try:
        return await service.email_for_erase_token(session, settings, signer, token)
    except InvalidToken as exc:
        raise _refuse(request, exc) from exc


ConfirmLink = Annotated[SubscriptionLink, Depends(_subscription_link(Purpose.confirm))]
UnsubscribeLink = Annotated[SubscriptionLink, Depends(_subscription_link(Purpose.unsubscribe))]
EraseLink = Annotated[str | None, Depends(_erase_link)]


def _done(request: Request, result: BaseModel, heading: str, message: str) -> Response:
    if wants_json(request.headers.get("accept")):
        return JSONResponse(result.model_dump())
    return render_page("done.html", heading=heading, message=message)


async def _button_page(
    session: AsyncSession, link: SubscriptionLink, purpose: Purpose, template: str
) -> HTMLResponse:
    username = await service.username_of(session, link.subscription.player_id)
    return render_page(template, username=username, action=link_target(purpose, link.token))


@router.get(
    CONFIRM_ROUTE,
    response_class=HTMLResponse,
    summary="Confirmation page (changes nothing; the button POSTs)",
    responses=_PAGE,
)
async def confirm_page(link: ConfirmLink, session: SessionDep) -> HTMLResponse:
    return await _button_page(session, link, Purpose.confirm, "confirm.html")


@router.post(
    CONFIRM_ROUTE,
    summary="Confirm a subscription",
    response_model=ConfirmResult,
    responses=_PAGE_ACTION,
)
async def confirm(request: Request, link: ConfirmLink, session: SessionDep) -> Response:
    consent = service.Consent(ip=client_ip(request), user_agent=request.headers.get("user-agent"))
    await service.confirm(session, link.subscription, consent)
    username = await service.username_of(session, link.subscription.player_id)
    return _done(
        request,
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
async def unsubscribe_page(link: UnsubscribeLink, session: SessionDep) -> HTMLResponse:
    return await _button_page(session, link, Purpose.unsubscribe, "unsubscribe.html")


@router.post(
    UNSUBSCRIBE_ROUTE,
    summary="Unsubscribe (also RFC 8058 one-click)",
    description="Accepts an empty body, a form post, or `List-Unsubscribe=One-Click`. Idempotent.",
    response_model=UnsubscribeResult,
    responses=_PAGE_ACTION,
)
async def unsubscribe(request: Request, link: UnsubscribeLink, session: SessionDep) -> Response:
    await service.unsubscribe(session, link.subscription)
    username = await service.username_of(session, link.subscription.player_id)
    return _done(
        request,
        UnsubscribeResult(username=username),
        "You are unsubscribed",
        f"You will get no more emails about {username}.",
    )


@router.get(
    ERASE_ROUTE,
    response_class=HTMLResponse,
    summary="Erase page (changes nothing; the button POSTs)",
    responses=_PAGE,
)
async def erase_page(_email: EraseLink, token: TokenQuery) -> HTMLResponse:
    return render_page("erase.html", action=link_target(Purpose.erase, token))


@router.post(
    ERASE_ROUTE,
    summary="Erase every row about the address of an erase link",
    response_model=Accepted,
    responses=_PAGE_ACTION,
)
async def erase(request: Request, email: EraseLink, session: SessionDep) -> Response:
    if email is not None:
        await service.erase_address(session, email)
    return _done(
        request,
        Accepted(detail="Your data has been deleted."),
        "Your data has been deleted",
        "We no longer hold any subscription or notification record for your address.",
    )
