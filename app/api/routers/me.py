"""The subscriber self-service API (SPEC §4 `/me`): a manage token as the bearer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import ChannelsDep, PlatformsDep, SessionDep, SettingsDep, SignerDep
from app.api.errors import error_responses
from app.api.routers.subscriptions import subscribe_one
from app.config import Settings
from app.errors import AppError
from app.models import Channel
from app.subscriptions import me as service
from app.subscriptions.me_schemas import LinkRequest, Me, MePatch, SubscriptionPatch
from app.subscriptions.schemas import Accepted, OwnedSubscribeRequest, SubscriptionStatus
from app.subscriptions.service import erase_address
from app.tokens import TokenSigner

router = APIRouter(prefix="/me", tags=["me"])

Resolve = Callable[[AsyncSession, Settings, TokenSigner, str], Awaitable[str]]


def manage_bearer(
    scheme_name: str, description: str, resolve: Resolve, invalid: type[AppError]
) -> Callable[..., Awaitable[str]]:
    """A dependency: the recipient a manage token sent as the bearer speaks for (an
    address, or a webhook URL), by `resolve`; `invalid` (a 401) without one."""
    scheme = HTTPBearer(auto_error=False, scheme_name=scheme_name, description=description)

    async def recipient(
        session: SessionDep,
        settings: SettingsDep,
        signer: SignerDep,
        credentials: HTTPAuthorizationCredentials | None = Depends(scheme),
    ) -> str:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise invalid()
        return await resolve(session, settings, signer, credentials.credentials)

    return recipient


_address = manage_bearer(
    "ManageToken",
    "The token of a manage link (`/manage?token=…`), from any of our emails "
    "or from `POST /me/link`.",
    service.address_of,
    service.InvalidManageToken,
)
AddressDep = Annotated[str, Depends(_address)]
SubscriptionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A subscription's id")]


# Routes declare their whole OpenAPI entry (status, summary, description, errors) where
# they are defined: declarations of that shape repeat across routers by design (the
# duplicate scan pairs them); the behaviour behind each lives in its service.
@router.post(
    "/link",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Email a manage link to an address",
    description="Always 202, whether or not the address is known; the link goes out only "
    "to an address with subscriptions, at most a few times a day. Rate-limited per client.",
    responses=error_responses(422, 429),
)
async def request_link(body: LinkRequest, session: SessionDep, settings: SettingsDep) -> Accepted:
    await service.request_manage_link(session, settings, body.email)
    return Accepted(detail="If this address has subscriptions, we sent it a link.")


@router.get(
    "",
    response_model=Me,
    summary="The address's preferences and subscriptions",
    responses=error_responses(401),
)
async def get_me(address: AddressDep, session: SessionDep) -> Me:
    return await service.me(session, address)


@router.patch(
    "",
    response_model=Me,
    summary="Change time zone and delivery (immediate or a daily digest, quiet hours)",
    responses=error_responses(401, 422, 429),
)
async def patch_me(address: AddressDep, body: MePatch, session: SessionDep) -> Me:
    await service.update_preferences(session, address, body)
    return await service.me(session, address)


@router.post(
    "/subscriptions",
    response_model=SubscriptionStatus,
    response_model_exclude_none=True,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Subscribe a browser or a Telegram chat of the address's person",
    description="As `POST /subscriptions` with `push` (201, with the browser's "
    "`manage_token`) or `telegram` (202, with the bot's `link`), and the subscription "
    "belongs to the address: erasing the address (`DELETE /me`, the admin's erase) erases "
    "it too. A browser tied to an address stays tied when it subscribes again.",
    responses={
        **error_responses(401, 404, 422, 429, 503),
        201: {"model": SubscriptionStatus, "description": "Active (a browser)"},
    },
)
async def subscribe_mine(
    address: AddressDep,
    body: OwnedSubscribeRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    platforms: PlatformsDep,
    channels: ChannelsDep,
    signer: SignerDep,
) -> SubscriptionStatus:
    return await subscribe_one(
        body, response, session, settings, platforms, channels, signer, owner=address
    )


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase every row about the address",
    responses=error_responses(401, 429),
)
async def delete_me(address: AddressDep, session: SessionDep) -> Response:
    await erase_address(session, address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def add_subscription_routes(
    router: APIRouter,
    owner: Callable[..., Awaitable[str]],
    view: Callable[[AsyncSession, str], Awaitable[BaseModel]],
    response_model: type[BaseModel],
    *,
    channel: Channel,
    noun: str,
    unauthorized: dict[int | str, dict[str, Any]],
) -> None:
    """`PATCH` and `DELETE /subscriptions/{id}` under `router`, for the subscriptions of
    the recipient a manage token names (`owner`, a dependency): an address (`/me`) or a
    webhook URL (`/webhooks/me`). Any other id is 404; PATCH answers with `view`."""

    @router.patch(
        "/subscriptions/{subscription_id}",
        response_model=response_model,
        summary=f"Pause, resume or change the filters of one of {noun}'s subscriptions",
        description=f"Only {noun}'s own subscriptions: any other id is 404. Sessions "
        "detected afterwards obey the change.",
        responses={**unauthorized, **error_responses(404, 422, 429)},
    )
    async def patch_subscription(
        subscription_id: SubscriptionId,
        body: SubscriptionPatch,
        session: SessionDep,
        recipient: str = Depends(owner),
    ) -> Any:
        await service.update_subscription(
            session, recipient, subscription_id, body, channel=channel
        )
        return await view(session, recipient)

    @router.delete(
        "/subscriptions/{subscription_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary=f"Unsubscribe {noun} from one player",
        responses={**unauthorized, **error_responses(404, 429)},
    )
    async def delete_subscription(
        subscription_id: SubscriptionId, session: SessionDep, recipient: str = Depends(owner)
    ) -> Response:
        await service.unsubscribe(session, recipient, subscription_id, channel=channel)
        return Response(status_code=status.HTTP_204_NO_CONTENT)


add_subscription_routes(
    router,
    _address,
    service.me,
    Me,
    channel=Channel.email,
    noun="the address",
    unauthorized=error_responses(401),
)
