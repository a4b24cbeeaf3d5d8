"""Subscription and erasure routes (SPEC §4); the pages email links open: app.api.routers.links.

Route declarations share one shape on purpose: each spells out its own OpenAPI contract.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from app.api.deps import ChannelsDep, PlatformsDep, SessionDep, SettingsDep, SignerDep
from app.api.errors import error_responses
from app.api.params import UsernamePath
from app.api.security import AdminDep
from app.channels.base import InvalidAddress
from app.channels.push import PushChannel
from app.channels.telegram import TelegramChannel, TelegramUnavailable
from app.errors import NotFound, Unprocessable, UpstreamUnavailable
from app.schemas import Email
from app.subscriptions import push_manage, recipients, service, telegram
from app.subscriptions.schemas import (
    Accepted,
    EraseRequest,
    OwnedSubscribeRequest,
    SubscribeRequest,
    SubscriptionOut,
    SubscriptionStatus,
)

router = APIRouter(tags=["subscriptions"])


@router.post(
    "/subscriptions",
    response_model=SubscriptionStatus,
    response_model_exclude_none=True,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Subscribe an email address, a webhook, a browser or a Telegram chat to a player",
    description="Exactly one channel per request (the body is `oneOf`). "
    "Tracks the player if needed and sends a confirmation email (double opt-in). "
    "The answer is the same whether or not the address was already subscribed.\n\n"
    "With `webhook` instead of `email`, a verification message carrying the confirm link "
    "is posted to the URL (a Discord or Slack message, or the signed `json` event); a URL "
    "that is not https or whose host is or resolves to a loopback, private, link-local or "
    "otherwise non-public address is refused with 422. For `json`, the answer carries the "
    "signing `secret`, shown only here.\n\n"
    "With `push` (a browser's `PushSubscription.toJSON()`: endpoint and keys), the "
    "subscription is active at once (201): the browser's permission prompt was the "
    "consent. The endpoint obeys the webhook URL rules; keys that are not a P-256 point "
    "and a 16-byte secret are refused with 422. The answer carries a `manage_token`: the "
    "bearer of `/push/me`, which lists, pauses and removes this browser's subscriptions.\n\n"
    "With `telegram: true` (only when the site runs a Telegram bot, else 422), the answer "
    "carries a `link` to the bot; pressing Start there activates the subscription.",
    responses={
        **error_responses(404, 422, 429, 503),
        201: {"model": SubscriptionStatus, "description": "Active (confirmation off)"},
    },
)
async def subscribe(
    body: SubscribeRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    platforms: PlatformsDep,
    channels: ChannelsDep,
    signer: SignerDep,
) -> SubscriptionStatus:
    return await subscribe_one(body, response, session, settings, platforms, channels, signer)


async def subscribe_one(
    body: SubscribeRequest | OwnedSubscribeRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    platforms: PlatformsDep,
    channels: ChannelsDep,
    signer: SignerDep,
    *,
    owner: str | None = None,
) -> SubscriptionStatus:
    """One subscription of the channel the body names; `owner`: the address a browser or
    chat subscribed with its manage token belongs to (`POST /me/subscriptions`)."""
    kind, given = body.address()
    choice = service.Choice(filters=body.filters, events=body.events)
    if kind == TelegramChannel.name:
        return await _subscribe_telegram(
            session, platforms, channels, body.username, choice, owner=owner
        )
    recipient = await recipients.recipient(channels[kind], given)
    done = await service.subscribe(
        session,
        settings,
        platforms,
        recipient=recipient,
        username=body.username,
        choice=choice,
    )
    if done.status == "active":
        response.status_code = status.HTTP_201_CREATED
    manage_token = None
    if kind == PushChannel.name:  # the browser keeps it: its way back to its subscriptions
        await push_manage.tie_to_owner(session, recipient.address, owner)
        manage_token = await push_manage.manage_token_for(session, signer, recipient.address)
    return SubscriptionStatus(status=done.status, secret=done.secret, manage_token=manage_token)


async def _subscribe_telegram(
    session: SessionDep,
    platforms: PlatformsDep,
    channels: ChannelsDep,
    username: str,
    choice: service.Choice,
    *,
    owner: str | None,
) -> SubscriptionStatus:
    """A pending subscription and its deep link (SPEC §11); the bot's /start binds it."""
    channel = channels[TelegramChannel.name]
    assert isinstance(channel, TelegramChannel)
    try:
        await channel.check_address({})
    except InvalidAddress as exc:  # the site runs no bot
        raise Unprocessable(str(exc)) from exc
    sub_id = await telegram.subscribe_pending(session, platforms, username, choice, owner=owner)
    try:
        link = await channel.deep_link(sub_id)
    except TelegramUnavailable as exc:
        raise UpstreamUnavailable("Telegram cannot be reached; please try again") from exc
    return SubscriptionStatus(status="pending_confirmation", link=link)


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
    player, subs = await service.list_for_player(session, username)
    return [
        SubscriptionOut.model_validate({**_columns(s), "username": player.username}) for s in subs
    ]


def _columns(sub: object) -> dict[str, object]:
    return {k: getattr(sub, k) for k in SubscriptionOut.model_fields if k != "username"}


# Routes declare their whole OpenAPI entry (status, summary, description, errors) where
# they are defined: declarations of that shape repeat across routers by design (the
# duplicate scan pairs them); the behaviour behind each lives in its service.
@router.delete(
    "/subscribers/{email:email}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase every row about an address (admin)",
    description="Deletes the address's subscriptions and their logs, its settings, and the "
    "browsers (push) and Telegram chats subscribed with its manage token "
    "(`POST /me/subscriptions`). The address is looked up in its canonical form and as "
    "given, so any stored spelling is found. 404 when nothing is stored about it (and for "
    "a last path segment without an `@`: no address); 422 for a malformed address (e.g. "
    "a domain without a dot).",
    tags=["admin"],
    responses=error_responses(401, 404, 422, 429),
)
async def erase_subscriber(
    request: Request,
    email: Annotated[Email, Path(description="The address to erase")],
    session: SessionDep,
    _admin: AdminDep,
) -> Response:
    given = str(request.path_params.get("email", "")).strip()  # as typed, before canonical
    if not await service.erase_address(session, email, also=(given, given.lower())):
        raise NotFound("Nothing is stored about this address")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/webhook-subscribers",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase every subscription of a webhook URL, with its logs (admin)",
    tags=["admin"],
    responses=error_responses(401, 422, 429),
)
async def erase_webhook_subscriber(
    url: Annotated[str, Query(min_length=1, max_length=2000, description="The webhook URL")],
    session: SessionDep,
    _admin: AdminDep,
) -> Response:
    await service.erase_webhook(session, url)
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
