"""The site (issue 12): home `/` (subscribe, ask for a manage link) and `/manage`.

Server-rendered, no script, no external asset; every form carries a CSRF token
(app.api.pages.csrf) and posts to a route under the same rate limits as the API. The rules
are the API's services: subscribing here is the same double opt-in as POST /subscriptions.

The player's avatar is not shown: it lives on Chess.com's image host, and loading it
would tell a third party who visits (and break the no-external-asset rule); proxying it
would make this server fetch URLs taken from another service's data. A monogram of the
username stands in its place; the player is recognised by title, name and username.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from app.api.deps import (
    ChannelsDep,
    PlatformsDep,
    ReadPoolDep,
    SessionDep,
    SettingsDep,
    SignerDep,
)
from app.api.pages import csrf
from app.api.pages.render import PageAnswer, render_page
from app.api.ratelimit import rate_limit
from app.chesscom.payloads import Profile
from app.config import Settings
from app.errors import AppError, InvalidToken, NotFound, Unauthorized
from app.models import Channel
from app.models.subscription import DEFAULT_TIME_CLASSES, EVENTS, TIME_CLASSES
from app.player_keys import PLATFORM_NAMES
from app.player_pages.home import home_lists
from app.players import service as players
from app.players.keys import Platform
from app.players.platforms import Platforms
from app.schemas import USERNAME_HINT, USERNAME_PATTERN, canonical_email
from app.subscriptions import me as service
from app.subscriptions import recipients
from app.subscriptions import service as subscriptions
from app.subscriptions.me_schemas import (
    DeliveryPatch,
    Filters,
    FiltersPatch,
    MePatch,
    QuietHours,
    SubscriptionPatch,
    zone_choices,
)
from app.subscriptions.service import erase_address
from app.tokens import TokenSigner
from app.urls import HOME_PATH, MANAGE_PATH, SEND_LINK_PATH, SUBSCRIBE_PATH, manage_target

router = APIRouter(include_in_schema=False, dependencies=[Depends(rate_limit)])

TokenParam = Annotated[str, Query(max_length=1000)]

# What a manage form did, told on the page it redirects to (never user input).
_DONE = {
    "preferences": "Your delivery settings are saved.",
    "subscription": "Your changes are saved.",
    "paused": "Paused: you get nothing about this player until you resume.",
    "resumed": "Resumed.",
    "unsubscribed": "Unsubscribed.",
    "unsubscribed_all": "You are unsubscribed from every player.",
}


class FormRefused(AppError):
    status_code = 403
    default_detail = "This form has expired. Reload the page and try again."


@dataclass(frozen=True, slots=True)
class PlayerCard:
    username: str
    name: str | None
    title: str | None
    url: str | None
    followers: int

    @property
    def monogram(self) -> str:
        return self.username[:1].upper()

    @property
    def platform_name(self) -> str:
        """Where the profile link goes, as people write it (the username is the key)."""
        return PLATFORM_NAMES[players.player_key(self.username).platform]


def _page(
    request: Request,
    settings: Settings,
    template: str,
    status_code: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    secret = settings.resolved_secret_key()
    token = csrf.token_for(request, secret)
    # Telegram is offered on the pages only when the site runs a bot (SPEC §11).
    ctx.setdefault("telegram_enabled", settings.telegram_enabled)
    response = render_page(template, status_code, csrf_field=csrf.FIELD, csrf_token=token, **ctx)
    csrf.set_cookie(response, token, secure=settings.public_url.startswith("https://"))
    return response


async def _form(request: Request, settings: Settings) -> FormData:
    form = await request.form()
    try:
        csrf.check(request, settings.resolved_secret_key(), form.get(csrf.FIELD))
    except csrf.CsrfFailed as exc:
        raise FormRefused() from exc
    return form


async def _checked_form(request: Request, settings: SettingsDep) -> FormData:
    return await _form(request, settings)


# A posted form whose CSRF token checked out (403 otherwise, before the route runs).
CheckedForm = Annotated[FormData, Depends(_checked_form)]


def _text(form: FormData, name: str, limit: int = 320) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def form_filters(form: FormData) -> Filters | None:
    """The filters of a form's `tc_<class>` and `rated_only` boxes; None when no kind
    of game is ticked (a subscription must notify about something)."""
    classes = [c for c in TIME_CLASSES if form.get(f"tc_{c}")]
    if not classes:
        return None
    return Filters.model_validate(
        {"time_classes": classes, "rated_only": bool(form.get("rated_only"))}
    )


def form_events(form: FormData) -> list[str] | None:
    """The events of a form's `ev_<kind>` boxes; None when the form had no such boxes
    (the defaults, or no change), [] when none is ticked (an error to show)."""
    if not form.get("events_shown"):
        return None
    return [kind for kind in EVENTS if form.get(f"ev_{kind}")]


# -- home ----------------------------------------------------------------------------


@router.get(HOME_PATH, response_class=HTMLResponse)
async def home(request: Request, settings: SettingsDep, pool: ReadPoolDep) -> HTMLResponse:
    return _page(request, settings, "home.html", values={}, **await home_lists(pool))


def _card_from_profile(profile: Profile) -> PlayerCard:
    return PlayerCard(
        username=profile.username.lower(),
        name=profile.name,
        title=profile.title,
        url=profile.url,
        followers=profile.followers,
    )


async def _look_up(session: AsyncSession, platforms: Platforms, username: str) -> PlayerCard:
    """The player as we know it, or (not tracked yet) as its platform shows it: nothing
    is stored before the fan commits."""
    tracked = await players.find_player(session, username)
    if tracked is not None:
        return PlayerCard(tracked.key, tracked.name, tracked.title, tracked.url, tracked.followers)
    wanted = players.player_key(username)
    if wanted.platform is Platform.lichess:
        user = await platforms.lichess_profiles().fetch(wanted.username)
        columns = players.lichess_columns(user)
        return PlayerCard(wanted.key, columns["name"], user.title, columns["url"], 0)
    return _card_from_profile(await players.fetch_profile(platforms.chesscom, username))


@router.post(SUBSCRIBE_PATH, response_class=HTMLResponse)
async def subscribe(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    platforms: PlatformsDep,
    channels: ChannelsDep,
    form: CheckedForm,
) -> HTMLResponse:
    """Step 1 (`step=lookup`) shows the player; step 2 (`step=subscribe`) subscribes."""
    username, raw_email = _text(form, "username", 40), _text(form, "email")
    values = {"username": username, "email": raw_email}
    errors: dict[str, str] = {}
    if not re.fullmatch(USERNAME_PATTERN, username):
        errors["username"] = USERNAME_HINT
    try:
        email = canonical_email(raw_email)
    except ValueError:
        errors["email"] = "Enter a valid email address, like name@example.com."
    if errors:
        return _page(request, settings, "home.html", 422, values=values, errors=errors)
    try:
        card = await _look_up(session, platforms, username)
    except NotFound as exc:
        errors["username"] = exc.detail.replace("'", "“", 1).replace("'", "”", 1) + "."
        return _page(request, settings, "home.html", 404, values=values, errors=errors)
    if _text(form, "step") != "subscribe":
        return _page(
            request,
            settings,
            "preview.html",
            player=card,
            email=email,
            time_classes=list(DEFAULT_TIME_CLASSES),
            events=None,
        )
    filters, events = form_filters(form), form_events(form)
    if filters is None or events == []:
        return _page(
            request,
            settings,
            "preview.html",
            422,
            player=card,
            email=email,
            time_classes=filters.time_classes if filters else [],
            events=events,
            error="Choose at least one kind of game."
            if filters is None
            else "Choose at least one kind of alert.",
        )
    done = await subscriptions.subscribe(
        session,
        settings,
        platforms,
        recipient=await recipients.recipient(channels["email"], {"email": email}),
        username=card.username,
        choice=subscriptions.Choice(filters=filters, events=events),
    )
    return _page(request, settings, "subscribed.html", player=card, status=done.status)


@router.post(SEND_LINK_PATH, response_class=HTMLResponse)
async def send_link(
    request: Request, session: SessionDep, settings: SettingsDep, form: CheckedForm
) -> HTMLResponse:
    raw = _text(form, "email")
    try:
        email = canonical_email(raw)
    except ValueError:
        return _page(
            request,
            settings,
            "home.html",
            422,
            values={"link_email": raw},
            errors={"link_email": "Enter a valid email address, like name@example.com."},
        )
    await service.request_manage_link(session, settings, email)
    return _page(request, settings, "link_sent.html")


# -- manage --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManageVisit:
    """A request on /manage or one of its forms, its link already verified: the address
    the token speaks for, and the answers every manage route gives.

    A webhook's manage page (app.api.pages.webhook_manage) is a subclass: there `address`
    is the webhook URL, and the page, its path and what erasing removes are its own."""

    request: Request
    session: AsyncSession
    settings: Settings
    token: str
    address: str

    channel: ClassVar[Channel] = Channel.email
    path: ClassVar[str] = MANAGE_PATH
    # The page that follows erasing: heading, message.
    erased: ClassVar[tuple[str, str]] = (
        "Your data has been deleted",
        "We no longer hold any subscription, setting or notification record for your address.",
    )

    @staticmethod
    async def recipient_of(
        session: AsyncSession, settings: Settings, signer: TokenSigner, token: str
    ) -> str:
        """Whom the link's token speaks for (raises Unauthorized or InvalidToken)."""
        return await service.address_of(session, settings, signer, token)

    @staticmethod
    def refused(request: Request, settings: Settings) -> HTMLResponse:
        """The page for a link that does not verify: it offers a fresh one."""
        return _page(request, settings, "manage_invalid.html", 401, values={})

    async def form(self) -> FormData:
        return await _form(self.request, self.settings)

    async def page(
        self, *, done: str = "", error: str | None = None, status: int = 200
    ) -> HTMLResponse:
        """The manage page, with what a form did (`done`) or why it did nothing."""
        me = await service.me(self.session, self.address)
        return _page(
            self.request,
            self.settings,
            "manage.html",
            status,
            me=me,
            query=urlencode({"token": self.token}),
            manage_path=MANAGE_PATH,
            notice=_DONE.get(done),
            error=error,
            zones=zone_choices(),
            hours=range(24),
            time_classes=list(DEFAULT_TIME_CLASSES),
        )

    def back(self, done: str) -> RedirectResponse:
        """After a form: back to the manage page, which says what was done."""
        return RedirectResponse(
            manage_target(self.token, path=self.path, done=done), status_code=303
        )

    async def erase_all(self) -> None:
        """Delete every row about the address."""
        await erase_address(self.session, self.address)

    async def save_subscription(self, subscription_id: int) -> Response:
        """One subscription form: unsubscribe, pause, resume, or save its filters."""
        form = await self.form()
        action = _text(form, "action", 20)
        recipient, channel = self.address, self.channel
        if action == "unsubscribe":
            await service.unsubscribe(self.session, recipient, subscription_id, channel=channel)
            return self.back("unsubscribed")
        if action in ("pause", "resume"):
            patch = SubscriptionPatch(paused=action == "pause")
        else:
            filters = form_filters(form)
            if filters is None:
                error = "Not saved: choose at least one kind of game (or pause instead)."
                return await self.page(error=error, status=422)
            events = form_events(form)
            if events == []:
                error = "Not saved: choose at least one kind of alert (or pause instead)."
                return await self.page(error=error, status=422)
            patch = SubscriptionPatch(
                filters=FiltersPatch.model_validate(filters.model_dump()),
                events=events,
            )
        await service.update_subscription(
            self.session, recipient, subscription_id, patch, channel=channel
        )
        return self.back({"pause": "paused", "resume": "resumed"}.get(action, "subscription"))

    async def erase(self) -> Response:
        """The erase form: nothing without its box ticked; then everything goes."""
        form = await self.form()
        if not form.get("confirm"):
            return await self.page(error="Nothing was erased: tick the box to confirm.", status=422)
        await self.erase_all()
        heading, message = self.erased
        return _page(self.request, self.settings, "done.html", heading=heading, message=message)


Visit = TypeVar("Visit", bound=ManageVisit)


def visit_dependency(kind: type[Visit]) -> Callable[..., Awaitable[Visit]]:
    """The dependency of a manage page's routes: it verifies the link first (`kind`'s
    `recipient_of`); a bad one gets `kind`'s refusal page, and the route does not run."""

    async def visit(
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        signer: SignerDep,
        token: TokenParam = "",
    ) -> Visit:
        try:
            recipient = await kind.recipient_of(session, settings, signer, token)
        except (Unauthorized, InvalidToken):
            raise PageAnswer(kind.refused(request, settings)) from None
        return kind(request, session, settings, token, recipient)

    return visit


def link_refused(request: Request, settings: Settings, message: str, hint: str) -> HTMLResponse:
    """The 401 page of a manage link that does not verify, for a page that cannot mail
    a fresh one (a webhook's, a chat's): what the link is not, and where a good one is."""
    return _page(
        request,
        settings,
        "error.html",
        401,
        heading="This link does not work",
        message=message,
        hint=hint,
    )


def add_manage_routes(target: APIRouter, kind: type[ManageVisit]) -> Any:
    """The routes every manage page has, on `kind.path`: the page, one subscription's
    form, and erasing. Returns the dependency (`Depends(...)`) for the page's own."""
    visit_of = Depends(visit_dependency(kind))

    async def page(
        visit: ManageVisit = visit_of, done: str = Query("", max_length=40)
    ) -> HTMLResponse:
        return await visit.page(done=done)

    async def save_subscription(subscription_id: int, visit: ManageVisit = visit_of) -> Response:
        return await visit.save_subscription(subscription_id)

    async def erase(visit: ManageVisit = visit_of) -> Response:
        return await visit.erase()

    target.get(kind.path, response_class=HTMLResponse)(page)
    target.post(kind.path + "/subscriptions/{subscription_id}", response_class=HTMLResponse)(
        save_subscription
    )
    target.post(kind.path + "/erase", response_class=HTMLResponse)(erase)
    return visit_of


# /manage, its subscription forms and erasing; its own forms below.
ManageDep = Annotated[ManageVisit, add_manage_routes(router, ManageVisit)]


@router.post(MANAGE_PATH + "/preferences", response_class=HTMLResponse)
async def save_preferences(visit: ManageDep) -> Response:
    form = await visit.form()
    try:
        quiet = None
        if form.get("quiet_enabled"):
            quiet = QuietHours(start=_text(form, "quiet_start", 5), end=_text(form, "quiet_end", 5))
        hour = _text(form, "digest_hour", 2)
        delivery = DeliveryPatch.model_validate(
            {
                "mode": _text(form, "mode", 16),
                "digest_hour": int(hour) if hour.isdigit() else -1,
                "quiet_hours": quiet,
            }
        )
        patch = MePatch(timezone=_text(form, "timezone", 64), delivery=delivery)
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        return await visit.page(error=f"Not saved: {message}", status=422)
    await service.update_preferences(visit.session, visit.address, patch)
    return visit.back("preferences")


@router.post(MANAGE_PATH + "/unsubscribe-all", response_class=HTMLResponse)
async def unsubscribe_all(visit: ManageDep) -> Response:
    form = await visit.request.form()
    if form.get("List-Unsubscribe") == "One-Click":
        # RFC 8058 one-click from a mail client (the digest's List-Unsubscribe): the signed
        # link is the proof, there is no page and so no CSRF cookie.
        await service.unsubscribe_all(visit.session, visit.address)
        return HTMLResponse("Unsubscribed from every player.", status_code=200)
    await visit.form()
    await service.unsubscribe_all(visit.session, visit.address)
    return visit.back("unsubscribed_all")

