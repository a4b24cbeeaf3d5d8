"""The pages that links in emails open: confirm, unsubscribe, erase (SPEC §4).

GET shows a page with a button and changes nothing (mail scanners follow links); POST acts,
answering a page to browsers and JSON when `Accept: application/json`. Each route gets its
subject from a dependency that verifies the link's token first; a bad link is refused with
an explanatory page (or the JSON error, for an API client's POST).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from app.api.deps import SessionDep, SettingsDep, SignerDep
from app.api.errors import page_error_responses
from app.api.net import client_ip
from app.api.pages.render import LinkRefused, render_page, wants_json
from app.errors import InvalidToken
from app.models import Channel, EmailSubscription
from app.subscriptions import service
from app.subscriptions.schemas import Accepted, ConfirmResult, UnsubscribeResult
from app.tokens import Purpose
from app.urls import CONFIRM_ROUTE, ERASE_ROUTE, UNSUBSCRIBE_ROUTE, link_target

router = APIRouter(tags=["subscriptions"])
_Route = TypeVar("_Route", bound=Callable[..., Any])

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
    username: str  # of the player it follows


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
        return SubscriptionLink(token, sub, await service.username_of(session, sub.player_id))

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


def _message_kind(sub: EmailSubscription) -> str:
    return "a webhook message" if sub.channel == Channel.webhook else "an email"


def _done(request: Request, result: BaseModel, heading: str, message: str) -> Response:
    if wants_json(request.headers.get("accept")):
        return JSONResponse(result.model_dump())
    return render_page("done.html", heading=heading, message=message)


def _link_page(path: str, what: str) -> Callable[[_Route], _Route]:
    """GET of a link: a page that changes nothing (mail scanners follow links)."""
    return router.get(
        path,
        response_class=HTMLResponse,
        summary=f"{what} page (changes nothing; the button POSTs)",
        responses=_PAGE,
    )


def _link_action(
    path: str, result: type[BaseModel], summary: str, description: str | None = None
) -> Callable[[_Route], _Route]:
    """POST of a link: acts; a page for browsers, JSON for API clients."""
    return router.post(
        path,
        summary=summary,
        description=description,
        response_model=result,
        responses=_PAGE_ACTION,
    )


def _button_page(link: SubscriptionLink, purpose: Purpose, template: str) -> HTMLResponse:
    return render_page(
        template,
        username=link.username,
        action=link_target(purpose, link.token),
        webhook=link.subscription.channel == Channel.webhook,
    )


@_link_page(CONFIRM_ROUTE, "Confirmation")
async def confirm_page(link: ConfirmLink) -> HTMLResponse:
    return _button_page(link, Purpose.confirm, "confirm.html")


@_link_action(CONFIRM_ROUTE, ConfirmResult, "Confirm a subscription")
async def confirm(request: Request, link: ConfirmLink, session: SessionDep) -> Response:
    consent = service.Consent(ip=client_ip(request), user_agent=request.headers.get("user-agent"))
    await service.confirm(session, link.subscription, consent)
    message = (
        f"You will get {_message_kind(link.subscription)} when {link.username} starts playing "
        "live chess."
    )
    return _done(request, ConfirmResult(username=link.username), "Subscription confirmed", message)


@_link_page(UNSUBSCRIBE_ROUTE, "Unsubscribe")
async def unsubscribe_page(link: UnsubscribeLink) -> HTMLResponse:
    return _button_page(link, Purpose.unsubscribe, "unsubscribe.html")


@_link_action(
    UNSUBSCRIBE_ROUTE,
    UnsubscribeResult,
    "Unsubscribe (also RFC 8058 one-click)",
    "Accepts an empty body, a form post, or `List-Unsubscribe=One-Click`. Idempotent.",
)
async def unsubscribe(request: Request, link: UnsubscribeLink, session: SessionDep) -> Response:
    await service.unsubscribe(session, link.subscription)
    message = f"You will get no more {_message_kind(link.subscription)}s about {link.username}."
    return _done(
        request, UnsubscribeResult(username=link.username), "You are unsubscribed", message
    )


@_link_page(ERASE_ROUTE, "Erase")
async def erase_page(_email: EraseLink, token: TokenQuery) -> HTMLResponse:
    return render_page("erase.html", action=link_target(Purpose.erase, token))


@_link_action(ERASE_ROUTE, Accepted, "Erase every row about the address of an erase link")
async def erase(request: Request, email: EraseLink, session: SessionDep) -> Response:
    if email is not None:
        await service.erase_address(session, email)
    return _done(
        request,
        Accepted(detail="Your data has been deleted."),
        "Your data has been deleted",
        "We no longer hold any subscription or notification record for your address.",
    )
