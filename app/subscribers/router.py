"""The subscriber self-service API (SPEC §4 `/me`): a manage token as the bearer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.deps import SessionDep, SettingsDep, SignerDep
from app.http_errors import error_responses
from app.subscribers import service
from app.subscribers.schemas import LinkRequest, Me, MePatch, SubscriptionPatch
from app.subscriptions.schemas import Accepted
from app.subscriptions.service import erase_address

router = APIRouter(prefix="/me", tags=["me"])

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ManageToken",
    description="The token of a manage link (`/manage?token=…`), from any of our emails "
    "or from `POST /me/link`.",
)


async def _address(
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise service.InvalidManageToken()
    return await service.address_of(session, settings, signer, credentials.credentials)


AddressDep = Annotated[str, Depends(_address)]
SubscriptionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A subscription's id")]


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


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase every row about the address",
    responses=error_responses(401, 429),
)
async def delete_me(address: AddressDep, session: SessionDep) -> Response:
    await erase_address(session, address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/subscriptions/{subscription_id}",
    response_model=Me,
    summary="Pause, resume or change the filters of one subscription",
    description="Only the address's own subscriptions: any other id is 404.",
    responses=error_responses(401, 404, 422, 429),
)
async def patch_subscription(
    subscription_id: SubscriptionId,
    body: SubscriptionPatch,
    address: AddressDep,
    session: SessionDep,
) -> Me:
    await service.update_subscription(session, address, subscription_id, body)
    return await service.me(session, address)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unsubscribe from one player",
    responses=error_responses(401, 404, 429),
)
async def delete_subscription(
    subscription_id: SubscriptionId, address: AddressDep, session: SessionDep
) -> Response:
    await service.unsubscribe(session, address, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
